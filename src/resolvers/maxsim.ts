// ColBERT-style late interaction, as LAYRA scores a page (contract §2.5):
// score(page) = sum over query vectors q of max over page vectors d of q·d.
// Matrices are row-major Float32Arrays of `dim` floats per vector; sums are kept in doubles.

export function toMatrix(vectors: readonly (readonly number[])[], dim: number): Float32Array {
  const matrix = new Float32Array(vectors.length * dim);
  vectors.forEach((vector, i) => matrix.set(vector, i * dim));
  return matrix;
}

export function maxSim(query: Float32Array, page: Float32Array, dim: number): number {
  let score = 0;
  for (let q = 0; q < query.length; q += dim) {
    let best = -Infinity;
    for (let d = 0; d < page.length; d += dim) {
      let dot = 0;
      for (let k = 0; k < dim; k++) dot += query[q + k]! * page[d + k]!;
      if (dot > best) best = dot;
    }
    score += best;
  }
  return score;
}

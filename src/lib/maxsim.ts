// ColBERT-style late interaction, as LAYRA scores a page (docs/layra-contract.md, "LAYRA's search"):
// score(page) = sum over query vectors q of max over page vectors d of q·d.
// Page vectors are fed window by window, so a search never holds every candidate's vectors at once
// (a Jina-v4 page has thousands). Matrices are row-major Float32Arrays; sums are kept in doubles.

export function toMatrix(vectors: readonly (readonly number[])[], dim: number): Float32Array {
  const matrix = new Float32Array(vectors.length * dim);
  vectors.forEach((vector, i) => matrix.set(vector, i * dim));
  return matrix;
}

export class MaxSimScores {
  /** Per page, the best inner product seen so far for each query vector. */
  private readonly best = new Map<string, Float64Array>();
  private readonly queryCount: number;

  constructor(
    private readonly query: Float32Array,
    private readonly dim: number,
  ) {
    this.queryCount = query.length / dim;
  }

  /** Feeds page vectors: `pageIds[i]` owns row i of `vectors`. Any order, any number of calls. */
  add(pageIds: readonly string[], vectors: Float32Array): void {
    const { query, dim, queryCount } = this;
    pageIds.forEach((pageId, row) => {
      let best = this.best.get(pageId);
      if (!best) this.best.set(pageId, (best = new Float64Array(queryCount).fill(-Infinity)));
      const d = row * dim;
      for (let q = 0; q < queryCount; q++) {
        let dot = 0;
        for (let k = 0; k < dim; k++) dot += query[q * dim + k]! * vectors[d + k]!;
        if (dot > best[q]!) best[q] = dot;
      }
    });
  }

  /** Feeds a whole page at once (`vectors` holds only its rows), e.g. from the page-vector cache. */
  addPage(pageId: string, vectors: Float32Array): void {
    const { query, dim, queryCount } = this;
    let best = this.best.get(pageId);
    if (!best) this.best.set(pageId, (best = new Float64Array(queryCount).fill(-Infinity)));
    const rows = vectors.length / dim;
    // The same products in the same order as add(), so a cached page scores exactly as a fetched one.
    for (let q = 0; q < queryCount; q++) {
      const qOffset = q * dim;
      let max = best[q]!;
      for (let row = 0; row < rows; row++) {
        const d = row * dim;
        let dot = 0;
        for (let k = 0; k < dim; k++) dot += query[qOffset + k]! * vectors[d + k]!;
        if (dot > max) max = dot;
      }
      best[q] = max;
    }
  }

  /** The MaxSim score of every page fed so far. */
  scores(): Map<string, number> {
    const scores = new Map<string, number>();
    for (const [pageId, best] of this.best)
      scores.set(
        pageId,
        best.reduce((sum, value) => sum + value, 0),
      );
    return scores;
  }
}

// ColBERT-style late interaction, as LAYRA scores a page (docs/layra-contract.md, "LAYRA's search"):
// score(page) = sum over query vectors q of max over page vectors d of q·d.
// Page vectors are fed window by window, so a search never holds every candidate's vectors at once
// (a Jina-v4 page has thousands). Matrices are row-major Float32Arrays; sums are kept in doubles.

import { setImmediate as setImmediatePromise } from "node:timers/promises";

/** The longest a scoring run holds the event loop (a page is well under 1 ms, so slices end close to it). */
export const SLICE_MS = 10;

export function toMatrix(vectors: readonly (readonly number[])[], dim: number): Float32Array {
  const matrix = new Float32Array(vectors.length * dim);
  vectors.forEach((vector, i) => matrix.set(vector, i * dim));
  return matrix;
}

export class MaxSimScores {
  /** Per page, the best inner product seen so far for each query vector. */
  private readonly best = new Map<string, Float64Array>();
  private readonly queryCount: number;
  /** Scratch: the inner products of one page vector with every query vector. */
  private readonly dots: Float64Array;

  constructor(
    private readonly query: Float32Array,
    private readonly dim: number,
  ) {
    this.queryCount = query.length / dim;
    this.dots = new Float64Array(this.queryCount);
  }

  /** Feeds page vectors: `pageIds[i]` owns row i of `vectors`. Any order, any number of calls. */
  add(pageIds: readonly string[], vectors: Float32Array): void {
    pageIds.forEach((pageId, row) => this.keepBest(this.bestOf(pageId), vectors, row));
  }

  /** Feeds a whole page at once (`vectors` holds only its rows), e.g. from the page-vector cache. */
  addPage(pageId: string, vectors: Float32Array): void {
    const best = this.bestOf(pageId);
    const rows = vectors.length / this.dim;
    for (let row = 0; row < rows; row++) this.keepBest(best, vectors, row);
  }

  /**
   * Feeds whole pages, giving the event loop back every SLICE_MS: a base held in memory is millions
   * of products, and other requests must not wait for all of them.
   */
  async addPages(pages: Iterable<[string, Float32Array]>): Promise<void> {
    let sliceStart = performance.now();
    for (const [pageId, vectors] of pages) {
      this.addPage(pageId, vectors);
      if (performance.now() - sliceStart < SLICE_MS) continue;
      await setImmediatePromise();
      sliceStart = performance.now();
    }
  }

  private bestOf(pageId: string): Float64Array {
    let best = this.best.get(pageId);
    if (!best) this.best.set(pageId, (best = new Float64Array(this.queryCount).fill(-Infinity)));
    return best;
  }

  /**
   * Raises `best` to the inner products of one page vector with the query vectors. Both add() and
   * addPage() go through here, so a cached page scores exactly as a fetched one. Four query vectors
   * share each pass over the page vector (a quarter of the reads); each product is still summed in
   * dimension order, so the result is the same as one query vector at a time.
   */
  private keepBest(best: Float64Array, vectors: Float32Array, row: number): void {
    const { query, dim, queryCount, dots } = this;
    const d = row * dim;
    let q = 0;
    for (; q + 4 <= queryCount; q += 4) {
      const o0 = q * dim,
        o1 = o0 + dim,
        o2 = o1 + dim,
        o3 = o2 + dim;
      let s0 = 0,
        s1 = 0,
        s2 = 0,
        s3 = 0;
      for (let k = 0; k < dim; k++) {
        const v = vectors[d + k]!;
        s0 += query[o0 + k]! * v;
        s1 += query[o1 + k]! * v;
        s2 += query[o2 + k]! * v;
        s3 += query[o3 + k]! * v;
      }
      dots[q] = s0;
      dots[q + 1] = s1;
      dots[q + 2] = s2;
      dots[q + 3] = s3;
    }
    for (; q < queryCount; q++) {
      const o = q * dim;
      let s = 0;
      for (let k = 0; k < dim; k++) s += query[o + k]! * vectors[d + k]!;
      dots[q] = s;
    }
    for (q = 0; q < queryCount; q++) if (dots[q]! > best[q]!) best[q] = dots[q]!;
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

// The threshold-algorithm certificate of the two-stage search (docs/architecture.md, "Exact two-stage
// search"). Stage 1 gives, per query vector i, the L nearest token rows. A page's MaxSim term for i is
// its best row's similarity, so a page absent from list i scores at most that list's L-th similarity
// there, and a page present scores exactly the similarity of its first row in the list. Summed over
// the query vectors these bound every page, scored or not, without reading its vectors.

/** One row of a stage-1 list: its page and its similarity to the query vector, best first. */
export interface ListedRow {
  imageId: string;
  score: number;
}

/**
 * Slack added to every bound: Milvus computes similarities in float32 and in another order than
 * MaxSimScores, which differ by about 1e-6 per term on unit vectors; this keeps every bound a bound.
 */
export const BOUND_SLACK_PER_TERM = 1e-4;

export interface StageOneBounds {
  /** The most any page absent from every list can score; -Infinity when some list holds every row. */
  outside: number;
  /** Per page present in some list (and accepted by `keep`): the most it can score. */
  upper: Map<string, number>;
}

/**
 * The bounds stage 1's lists prove, `lists[i]` being query vector i's `limit` nearest rows. A list
 * shorter than `limit` holds every row of the collection, so no page is absent from it.
 */
export function stageOneBounds(
  lists: readonly (readonly ListedRow[])[],
  limit: number,
  keep: (imageId: string) => boolean,
): StageOneBounds {
  const slack = BOUND_SLACK_PER_TERM;
  const absent = lists.map((list) => (list.length < limit ? -Infinity : list[list.length - 1]!.score + slack));
  const outside = absent.reduce((sum, bound) => sum + bound, 0);
  // Per page, its best row in each list (at least the absent bound, which is the list's last row), else that bound.
  const terms = new Map<string, number[]>();
  lists.forEach((list, i) => {
    for (const row of list) {
      if (!keep(row.imageId)) continue;
      let page = terms.get(row.imageId);
      if (!page) terms.set(row.imageId, (page = [...absent]));
      page[i] = Math.max(page[i]!, row.score + slack);
    }
  });
  const upper = new Map<string, number>();
  for (const [imageId, page] of terms)
    upper.set(
      imageId,
      page.reduce((sum, term) => sum + term, 0),
    );
  return { outside, upper };
}

/**
 * The score a page must beat to enter the answer: the k-th best exact score so far (-Infinity while
 * fewer than k are known), or the caller's threshold when that is higher.
 */
export function entryFloor(exact: Iterable<number>, k: number, threshold: number): number {
  const best = [...exact].sort((a, b) => b - a);
  return Math.max(best.length >= k ? best[k - 1]! : -Infinity, threshold);
}

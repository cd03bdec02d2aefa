import DataLoader from "dataloader";
import type { PagedList } from "../lib/pagination.js";
import { observedBatch } from "./observe.js";
import { scheduled, type LoaderScope } from "./scope.js";

/** A window of one group's documents in list order: `limit` of them after the first `offset`. */
interface GroupWindow {
  group: string;
  offset: number;
  limit: number;
}

/** How a group window loader reads the caller's documents; each read is bounded by its arguments. */
export interface GroupWindowReads<D> {
  /** The first `limit` of the caller's documents of these groups together, in list order. */
  firstOfGroups: (username: string, groups: readonly string[], limit: number) => Promise<D[]>;
  /** One group's window. */
  window: (username: string, group: string, offset: number, limit: number) => Promise<D[]>;
  /** How many documents each of these groups has (groups with none may be left out). */
  countByGroup: (username: string, groups: readonly string[]) => Promise<Map<string, number>>;
}

/** Documents read from the start of a list (of every group, or of some), grouped, and whether that was all of them. */
class ReadPrefix<D> {
  private readonly groups = new Map<string, D[]>();

  readonly size: number;

  constructor(
    docs: readonly D[],
    keyOf: (doc: D) => string,
    readonly whole: boolean,
  ) {
    this.size = docs.length;
    for (const doc of docs) {
      const group = this.groups.get(keyOf(doc));
      if (group) group.push(doc);
      else this.groups.set(keyOf(doc), [doc]);
    }
  }

  /** The window, when these documents hold it (or hold the whole group, which ends before it). */
  window({ group, offset, limit }: GroupWindow): D[] | undefined {
    const docs = this.groups.get(group) ?? [];
    return this.whole || docs.length >= offset + limit ? docs.slice(offset, offset + limit) : undefined;
  }

  count(group: string): number | undefined {
    return this.whole ? (this.groups.get(group)?.length ?? 0) : undefined;
  }
}

/**
 * Windows of the caller's documents per group (a workflow's chatflows), in list order, each read bounded by the
 * windows asked for: how a batch answers is in docs/performance.md, "The profile's reads".
 */
export class GroupWindowLoader<D> extends DataLoader<GroupWindow, D[], string> {
  private constructor(
    batch: DataLoader.BatchLoadFn<GroupWindow, D[]>,
    options: DataLoader.Options<GroupWindow, D[], string>,
    private readonly listed: { prefix: ReadPrefix<D> | null },
    private readonly counts: DataLoader<string, number>,
    private readonly keyOf: (doc: D) => string,
  ) {
    super(batch, options);
  }

  /** Windows of `collection`'s documents grouped by their `key` field (metrics: `{collection}.by.{key}`). */
  static create<D>(collection: string, key: keyof D & string, scope: LoaderScope, reads: GroupWindowReads<D>) {
    const { viewer, loaders } = scope;
    const keyOf = (doc: D) => doc[key] as string;
    const listed: { prefix: ReadPrefix<D> | null } = { prefix: null };
    const batch = observedBatch(`${collection}.by.${key}`, async (windows: readonly GroupWindow[]) => {
      if (!viewer) return windows.map(() => []);
      const answers = windows.map((window) => listed.prefix?.window(window));
      const firsts = new Map<string, number>();
      windows.forEach((window, i) => {
        if (!answers[i] && window.offset === 0)
          firsts.set(window.group, Math.max(firsts.get(window.group) ?? 0, window.limit));
      });
      if (firsts.size > 0) {
        const limit = [...firsts.values()].reduce((sum, n) => sum + n, 0);
        const docs = await loaders.reads.track(() => reads.firstOfGroups(viewer.username, [...firsts.keys()], limit));
        const shared = new ReadPrefix(docs, keyOf, docs.length < limit);
        windows.forEach((window, i) => {
          if (window.offset === 0) answers[i] ??= shared.window(window);
        });
      }
      return Promise.all(
        answers.map((answer, i) =>
          answer
            ? Promise.resolve(answer)
            : loaders.reads.track(() => {
                const { group, offset, limit } = windows[i]!;
                return reads.window(viewer.username, group, offset, limit);
              }),
        ),
      );
    });
    const counts = new DataLoader<string, number>(
      observedBatch(`${collection}.count.by.${key}`, async (groups: readonly string[]) => {
        if (!viewer) return groups.map(() => 0);
        const known = groups.map((group) => listed.prefix?.count(group));
        const unknown = groups.filter((_, i) => known[i] === undefined);
        const read =
          unknown.length > 0 ? await loaders.reads.track(() => reads.countByGroup(viewer.username, unknown)) : null;
        return groups.map((group, i) => known[i] ?? read?.get(group) ?? 0);
      }),
      scheduled(loaders.reads, 0),
    );
    return new GroupWindowLoader(
      batch,
      { ...scheduled(loaders.reads, 0), cacheKeyFn: ({ group, offset, limit }) => `${offset}:${limit}:${group}` },
      listed,
      counts,
      keyOf,
    );
  }

  /** The group's documents from `offset`, at most `limit`, as a paged list. */
  list(group: string): PagedList<D> {
    return {
      count: () => this.counts.load(group),
      page: (offset, limit) => this.load({ group, offset, limit }),
    };
  }

  /**
   * The start of the caller's list of every group, in the groups' order, as a page read it (`whole`:
   * the whole list): windows it holds are answered from it. The one that holds most is kept.
   */
  primePrefix(docs: readonly D[], whole: boolean): void {
    const kept = this.listed.prefix;
    if (!kept || (!kept.whole && (whole || docs.length > kept.size)))
      this.listed.prefix = new ReadPrefix(docs, this.keyOf, whole);
  }
}

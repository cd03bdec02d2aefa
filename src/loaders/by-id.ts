import DataLoader from "dataloader";
import { observedBatch } from "./observe.js";
import { scheduled, type FindOwned, type LoaderScope } from "./scope.js";

/** How a by-id loader reads the first page of one of the caller's lists (`L` says which) with its ids. */
export interface FirstPageWithIds<D, L> {
  /** One command for the first `limit` of `list` and those among `ids` (`complete`: every match came back). */
  read: (
    username: string,
    list: L,
    limit: number,
    ids: readonly string[],
  ) => Promise<{ page: D[]; found: D[]; complete: boolean }>;
  /** Pages of lists with one key are pages of one list. */
  key: (list: L) => string;
}

interface PageRequest<D, L> {
  list: L;
  limit: number;
  resolve: (docs: D[]) => void;
  reject: (error: unknown) => void;
}

interface ByIdState<D, L> {
  /** Documents this request read: by id, and from list pages. */
  known: Map<string, D>;
  /** First-page requests waiting for the next batch, and how a batch reads them with its ids. */
  pages: PageRequest<D, L>[];
  withFirstPage: FirstPageWithIds<D, L> | undefined;
}

/** The key that puts a first-page request into a batch: a symbol, so no client's id can be it. */
const FIRST_PAGE = Symbol("first page");

/** Batches one repository read per batch and returns the caller's document per id, in order. */
export class ByIdLoader<D, L = never> extends DataLoader<string, D | null> {
  private constructor(
    batch: DataLoader.BatchLoadFn<string, D | null>,
    options: DataLoader.Options<string, D | null>,
    private readonly state: ByIdState<D, L>,
    private readonly idOf: (doc: D) => string,
  ) {
    super(batch, options);
  }

  /**
   * Loads `collection`'s documents by their `key` field (metrics: `{collection}.{key}`); with `withFirstPage`,
   * a batch reads its first-page requests and its ids in one command (pages of another list, rare, apart).
   */
  static create<D, L = never>(
    collection: string,
    key: keyof D & string,
    scope: LoaderScope,
    find: FindOwned<D>,
    options: { stage?: number; withFirstPage?: FirstPageWithIds<D, L> } = {},
  ): ByIdLoader<D, L> {
    const { viewer, loaders } = scope;
    const idOf = (doc: D) => doc[key] as string;
    const state: ByIdState<D, L> = { known: new Map(), pages: [], withFirstPage: options.withFirstPage };
    const { known, withFirstPage } = state;
    const readPages = async (
      reads: FirstPageWithIds<D, L>,
      username: string,
      pages: PageRequest<D, L>[],
      ids: string[],
    ) => {
      const limit = Math.max(...pages.map((page) => page.limit));
      const both = await loaders.reads.track(() => reads.read(username, pages[0]!.list, limit, ids));
      for (const doc of [...both.page, ...both.found]) known.set(idOf(doc), doc);
      for (const page of pages) page.resolve(both.page.slice(0, page.limit));
      return both.complete;
    };
    const read = async (username: string, pages: PageRequest<D, L>[], ids: string[]) => {
      let unread = ids.filter((id) => !known.has(id));
      if (pages.length > 0 && withFirstPage) {
        const shared = withFirstPage.key(pages[0]!.list);
        const apart = pages.filter((page) => withFirstPage.key(page.list) !== shared);
        const together = pages.filter((page) => !apart.includes(page));
        const [complete] = await Promise.all([
          readPages(withFirstPage, username, together, unread),
          ...apart.map((page) => readPages(withFirstPage, username, [page], [])),
        ]);
        unread = complete ? [] : unread.filter((id) => !known.has(id));
      }
      if (unread.length > 0)
        for (const doc of await loaders.reads.track(() => find(username, unread))) known.set(idOf(doc), doc);
    };
    const batch = observedBatch(`${collection}.${key}`, async (keys: readonly (string | symbol)[]) => {
      const pages = state.pages.splice(0);
      try {
        const ids = keys.filter((k): k is string => typeof k === "string");
        if (viewer) await read(viewer.username, pages, ids);
        else for (const page of pages) page.resolve([]);
      } catch (error) {
        for (const page of pages) page.reject(error);
        throw error;
      }
      return keys.map((k) => (typeof k === "string" ? (known.get(k) ?? null) : null));
    });
    return new ByIdLoader(batch, scheduled(loaders.reads, options.stage ?? 0), state, idOf);
  }

  /** The first `limit` of the caller's documents in `list`, read in the next batch with its ids. */
  firstPage(list: L, limit: number): Promise<D[]> {
    if (!this.state.withFirstPage) return Promise.reject(new Error("this loader reads no first page"));
    return new Promise((resolve, reject) => {
      this.state.pages.push({ list, limit, resolve, reject });
      // Never cached, so each request joins the batch being gathered or starts one; a failed read
      // rejects the page itself.
      const loader = this as unknown as DataLoader<string | symbol, D | null>;
      loader
        .clear(FIRST_PAGE)
        .load(FIRST_PAGE)
        .catch(() => undefined);
      loader.clear(FIRST_PAGE);
    });
  }

  /** The caller's documents as a list page read them: loads of them need no other read. */
  primeRead(docs: readonly D[]): void {
    for (const doc of docs) {
      this.state.known.set(this.idOf(doc), doc);
      this.prime(this.idOf(doc), doc);
    }
  }

  override clear(id: string): this {
    this.state.known.delete(id);
    return super.clear(id);
  }

  override clearAll(): this {
    this.state.known.clear();
    return super.clearAll();
  }
}

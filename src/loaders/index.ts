// The per-request DataLoaders and list readers. Every cross-document hop goes through a loader, so a
// query issues a fixed number of Mongo commands however many documents it touches, and every read
// of the profile is tracked by the request's read schedule (src/lib/read-schedule.ts): a batch goes
// out once the reads before it have settled, so keys asked for at different levels of one query
// share one command. Documents a list page read answer later by-id loads without another command,
// and a list read whole answers the group loads over it. Each loader answers only with the caller's
// own documents: another user's id loads exactly like a missing one (null).
import DataLoader from "dataloader";
import type { Viewer } from "../context.js";
import type { ChatflowDoc, ConversationDoc, FileDoc, KnowledgeBaseDoc, WorkflowDoc } from "../stores/documents.js";
import type { Stores } from "../stores/index.js";
import { lazyObjects } from "../lib/lazy.js";
import type { PagedList } from "../lib/pagination.js";
import { ReadSchedule } from "../lib/read-schedule.js";
import { observedBatch } from "./observe.js";

type FindOwned<D> = (username: string, keys: readonly string[]) => Promise<D[]>;

/**
 * Knowledge bases, conversations, chatflows and workflows first; then the ids of the caller's listed
 * bases that `me.files` needs (none to read when the bases were listed whole); files last (a base's
 * refs name its files).
 */
const LISTED_IDS_STAGE = 1;
const FILES_STAGE = 2;

const scheduled = (reads: ReadSchedule, stage: number) => ({ batchScheduleFn: reads.batchesOf(stage) });

/** How a by-id loader reads the first page of one of the caller's lists (`L` says which) with its ids. */
interface FirstPageWithIds<D, L> {
  /**
   * One command for the first `limit` of the caller's documents in `list` and those among `ids`
   * (`complete`: every match came back, so an id not found is not the caller's).
   */
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
class ByIdLoader<D, L = never> extends DataLoader<string, D | null> {
  private constructor(
    batch: DataLoader.BatchLoadFn<string, D | null>,
    options: DataLoader.Options<string, D | null>,
    private readonly state: ByIdState<D, L>,
    private readonly idOf: (doc: D) => string,
  ) {
    super(batch, options);
  }

  /**
   * Loads `collection`'s documents by their `key` field (metrics name the loader `{collection}.{key}`).
   * With `withFirstPage`, a batch that carries first-page requests reads them and its ids in one
   * command (pages of another list than the first, rare, are read apart).
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

/**
 * Batches one repository read per batch and groups the caller's documents per key, in the order read.
 * Every document of a group is read: for lists a search scores whole (a base's files).
 */
function groupLoader<D>(collection: string, key: keyof D & string, scope: LoaderScope, find: FindOwned<D>, stage = 0) {
  const { viewer, loaders } = scope;
  const keyOf = (doc: D) => doc[key] as string;
  const batch = observedBatch(`${collection}.by.${key}`, async (keys: readonly string[]) => {
    if (!viewer) return keys.map(() => []);
    const groups = new Map<string, D[]>(keys.map((k) => [k, []]));
    for (const doc of await loaders.reads.track(() => find(viewer.username, keys))) groups.get(keyOf(doc))?.push(doc);
    return keys.map((k) => groups.get(k) ?? []);
  });
  return new DataLoader<string, D[]>(batch, scheduled(loaders.reads, stage));
}

/** A window of one group's documents in list order: `limit` of them after the first `offset`. */
interface GroupWindow {
  group: string;
  offset: number;
  limit: number;
}

/** How a group window loader reads the caller's documents; each read is bounded by its arguments. */
interface GroupWindowReads<D> {
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
 * Windows of the caller's documents per group (a workflow's chatflows), in the list's order. Every
 * read is bounded by the windows asked for, however large a group is. A batch answers:
 * - from the start of the caller's list that a list page read (`primePrefix`), without a read, the
 *   windows it holds (every window when the page was the whole list);
 * - the other first windows from one shared read of the first (sum of their limits) documents of
 *   their groups together: a group gets the start of its own list, and when fewer came back, all;
 * - what that read did not hold (a group crowded out by a larger one, a window past the start) by
 *   one read of that window each.
 */
class GroupWindowLoader<D> extends DataLoader<GroupWindow, D[], string> {
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
        answers.map(
          (answer, i) =>
            answer ??
            loaders.reads.track(() => {
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

/**
 * A list of the caller's documents whose reads the schedule tracks. `onPage` gets each page, its
 * offset and whether it is the whole list (read from the start and shorter than asked for).
 */
function trackedList<D>(
  reads: ReadSchedule,
  list: PagedList<D>,
  onPage: (docs: D[], offset: number, whole: boolean) => void,
): PagedList<D> {
  return {
    count: () => reads.track(() => list.count()),
    page: async (offset, limit) => {
      const docs = await reads.track(() => list.page(offset, limit));
      onPage(docs, offset, offset === 0 && docs.length < limit);
      return docs;
    },
  };
}

/**
 * The caller's list whose first page is read in the by-id loader's next batch, with its ids (one
 * command for both); other pages read at once. Every page primes the loader.
 */
function firstPageInBatch<D, L>(list: PagedList<D>, loader: ByIdLoader<D, L>, of: L): PagedList<D> {
  return {
    count: list.count,
    page: async (offset, limit) => {
      const docs = offset === 0 ? await loader.firstPage(of, limit) : await list.page(offset, limit);
      loader.primeRead(docs);
      return docs;
    },
  };
}

interface LoaderScope {
  stores: Stores;
  viewer: Viewer | null;
  /** The set these loaders belong to: a list primes the by-id loader of its collection. */
  loaders: LoaderSet;
}

interface LoaderSet {
  /** The request's read schedule: every loader batch and list read of the request goes through it. */
  reads: ReadSchedule;
  /** Its first page is of the caller's listed knowledge bases. */
  knowledgeBase: ByIdLoader<KnowledgeBaseDoc, null>;
  /** Its first page is of the files of these knowledge bases. */
  file: ByIdLoader<FileDoc, readonly string[]>;
  conversation: ByIdLoader<ConversationDoc>;
  chatflow: ByIdLoader<ChatflowDoc>;
  workflow: ByIdLoader<WorkflowDoc>;
  chatflowsByWorkflow: GroupWindowLoader<ChatflowDoc>;
  filesOfKnowledgeBase: DataLoader<string, FileDoc[]>;
  fileByImage: DataLoader<string, FileDoc | null>;
  /** The caller's paged lists; each page read primes its collection's by-id loader. */
  lists: ReturnType<typeof ownedLists>;
}

function ownedLists({ stores, viewer, loaders }: LoaderScope) {
  const { mongo } = stores;
  const { reads } = loaders;
  // Only pages of the viewer's own documents stand in for the loaders' reads.
  const own = (username: string) => username === viewer?.username;
  /** The caller's listed knowledge bases, once a first page read them all. */
  let wholeKnowledgeBases: KnowledgeBaseDoc[] | null = null;
  return {
    // The first page waits for the by-id batch and is read with it (the temp bases that turns name
    // are known only once the conversations are read): one command. Other pages read at once.
    knowledgeBases: (username: string): PagedList<KnowledgeBaseDoc> => {
      const list = trackedList(reads, mongo.knowledgeBases.list(username), () => undefined);
      if (!own(username)) return list;
      const shared = firstPageInBatch(list, loaders.knowledgeBase, null);
      return {
        count: list.count,
        page: async (offset, limit) => {
          const docs = await shared.page(offset, limit);
          if (offset === 0 && docs.length < limit) wholeKnowledgeBases = docs;
          return docs;
        },
      };
    },
    /**
     * The files of the caller's listed knowledge bases. Their ids wait for the knowledge-base
     * batches: when this request read the whole list, the ids come from it without a read. The
     * first page without a keyword is read in the files batch with its ids.
     */
    files: async (username: string, keyword: string | null | undefined) => {
      await reads.turn(LISTED_IDS_STAGE);
      const knowledgeBaseIds =
        own(username) && wholeKnowledgeBases
          ? wholeKnowledgeBases.map((kb) => kb.knowledge_base_id)
          : await reads.track(() => mongo.knowledgeBases.listedIds(username));
      const list = trackedList(reads, mongo.files.list(username, knowledgeBaseIds, keyword), (docs) => {
        if (own(username)) loaders.file.primeRead(docs);
      });
      return own(username) && !keyword ? firstPageInBatch(list, loaders.file, knowledgeBaseIds) : list;
    },
    conversations: (username: string) =>
      trackedList(reads, mongo.conversations.list(username), (docs) => {
        if (own(username)) loaders.conversation.primeRead(docs);
      }),
    // The list and the by-workflow windows read the same documents in the same order.
    chatflows: (username: string) =>
      trackedList(reads, mongo.chatflows.list(username), (docs, offset, whole) => {
        if (!own(username)) return;
        loaders.chatflow.primeRead(docs);
        if (offset === 0) loaders.chatflowsByWorkflow.primePrefix(docs, whole);
      }),
    workflows: (username: string) =>
      trackedList(reads, mongo.workflows.list(username), (docs) => {
        if (own(username)) loaders.workflow.primeRead(docs);
      }),
  };
}

const makeLoaders = lazyObjects<LoaderScope, LoaderSet>({
  reads: () => new ReadSchedule(),
  // A list's first page is read with the by-id batch: one command for both.
  knowledgeBase: (scope) => {
    const { knowledgeBases } = scope.stores.mongo;
    return ByIdLoader.create<KnowledgeBaseDoc, null>(
      "knowledge_bases",
      "knowledge_base_id",
      scope,
      knowledgeBases.findByIds,
      {
        withFirstPage: {
          read: (username, _list, limit, ids) => knowledgeBases.firstPageWithIds(username, limit, ids),
          key: () => "",
        },
      },
    );
  },
  file: (scope) =>
    ByIdLoader.create<FileDoc, readonly string[]>("files", "file_id", scope, scope.stores.mongo.files.findByIds, {
      stage: FILES_STAGE,
      withFirstPage: {
        read: scope.stores.mongo.files.firstPageWithIds,
        key: (knowledgeBaseIds) => [...knowledgeBaseIds].sort().join(" "),
      },
    }),
  conversation: (scope) =>
    ByIdLoader.create("conversations", "conversation_id", scope, scope.stores.mongo.conversations.findByIds),
  chatflow: (scope) => ByIdLoader.create("chatflows", "chatflow_id", scope, scope.stores.mongo.chatflows.findByIds),
  workflow: (scope) => ByIdLoader.create("workflows", "workflow_id", scope, scope.stores.mongo.workflows.findByIds),
  chatflowsByWorkflow: (scope) => {
    const { chatflows } = scope.stores.mongo;
    return GroupWindowLoader.create<ChatflowDoc>("chatflows", "workflow_id", scope, {
      firstOfGroups: chatflows.firstOfWorkflows,
      window: chatflows.pageOfWorkflow,
      countByGroup: chatflows.countByWorkflow,
    });
  },
  /** The caller's files of a knowledge base: the page list searches score. */
  filesOfKnowledgeBase: (scope) =>
    groupLoader("files", "knowledge_db_id", scope, scope.stores.mongo.files.findByKnowledgeBaseIds, FILES_STAGE),
  /** The file that holds a page image (`files.images[].images_id`), for page-image node ids. */
  fileByImage: ({ stores, viewer, loaders }) =>
    new DataLoader<string, FileDoc | null>(
      observedBatch("files.images.images_id", async (imageIds: readonly string[]) => {
        if (!viewer) return imageIds.map(() => null);
        const byImage = new Map<string, FileDoc>();
        const docs = await loaders.reads.track(() => stores.mongo.files.findByImageIds(viewer.username, imageIds));
        for (const doc of docs) for (const image of doc.images) byImage.set(image.images_id, doc);
        return imageIds.map((id) => byImage.get(id) ?? null);
      }),
      scheduled(loaders.reads, FILES_STAGE),
    ),
  lists: ownedLists,
});

/** The caller's loaders; each DataLoader is made when first used (most operations use few or none). */
export function createLoaders(stores: Stores, viewer: Viewer | null): LoaderSet {
  const scope = { stores, viewer } as LoaderScope;
  scope.loaders = makeLoaders(scope);
  return scope.loaders;
}

/** The per-request DataLoaders: created for every operation and every subscription event. */
export type Loaders = ReturnType<typeof createLoaders>;

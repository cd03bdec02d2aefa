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

/** Knowledge bases, conversations, chatflows and workflows first; files after them (a base's refs name its files). */
const FILES_STAGE = 1;

const scheduled = (reads: ReadSchedule, stage: number) => ({ batchScheduleFn: reads.batchesOf(stage) });

/** Batches one repository read per batch and returns the caller's document per id, in order. */
class ByIdLoader<D> extends DataLoader<string, D | null> {
  private constructor(
    batch: DataLoader.BatchLoadFn<string, D | null>,
    options: DataLoader.Options<string, D | null>,
    private readonly known: Map<string, D>,
    private readonly idOf: (doc: D) => string,
  ) {
    super(batch, options);
  }

  /** Loads `collection`'s documents by their `key` field (metrics name the loader `{collection}.{key}`). */
  static create<D>(
    collection: string,
    key: keyof D & string,
    scope: LoaderScope,
    find: FindOwned<D>,
    stage = 0,
  ): ByIdLoader<D> {
    const { viewer, loaders } = scope;
    const name = `${collection}.${key}`;
    const idOf = (doc: D) => doc[key] as string;
    const known = new Map<string, D>();
    const batch = observedBatch(name, async (ids: readonly string[]) => {
      if (!viewer) return ids.map(() => null);
      const unread = ids.filter((id) => !known.has(id));
      if (unread.length > 0)
        for (const doc of await loaders.reads.track(() => find(viewer.username, unread))) known.set(idOf(doc), doc);
      return ids.map((id) => known.get(id) ?? null);
    });
    return new ByIdLoader(batch, scheduled(loaders.reads, stage), known, idOf);
  }

  /** The caller's documents as a list page read them: loads of them need no other read. */
  primeRead(docs: readonly D[]): void {
    for (const doc of docs) {
      this.known.set(this.idOf(doc), doc);
      this.prime(this.idOf(doc), doc);
    }
  }

  override clear(id: string): this {
    this.known.delete(id);
    return super.clear(id);
  }

  override clearAll(): this {
    this.known.clear();
    return super.clearAll();
  }
}

/** Batches one repository read per batch and groups the caller's documents per key, in the order read. */
class GroupLoader<D> extends DataLoader<string, D[]> {
  private constructor(
    batch: DataLoader.BatchLoadFn<string, D[]>,
    options: DataLoader.Options<string, D[]>,
    private readonly whole: { docs: readonly D[] | null },
  ) {
    super(batch, options);
  }

  /** Groups `collection`'s documents by their `key` field (metrics name the loader `{collection}.by.{key}`). */
  static create<D>(collection: string, key: keyof D & string, scope: LoaderScope, find: FindOwned<D>, stage = 0) {
    const { viewer, loaders } = scope;
    const name = `${collection}.by.${key}`;
    const keyOf = (doc: D) => doc[key] as string;
    const whole: { docs: readonly D[] | null } = { docs: null };
    const batch = observedBatch(name, async (keys: readonly string[]) => {
      if (!viewer) return keys.map(() => []);
      const groups = new Map<string, D[]>(keys.map((k) => [k, []]));
      const docs = whole.docs ?? (await loaders.reads.track(() => find(viewer.username, keys)));
      for (const doc of docs) groups.get(keyOf(doc))?.push(doc);
      return keys.map((k) => groups.get(k) ?? []);
    });
    return new GroupLoader(batch, scheduled(loaders.reads, stage), whole);
  }

  /**
   * Every document the group reads could find (all of the caller's, in the group's order): the
   * groups are answered from them without a read.
   */
  primeWhole(docs: readonly D[]): void {
    this.whole.docs = docs;
  }

  override clear(key: string): this {
    this.whole.docs = null;
    return super.clear(key);
  }

  override clearAll(): this {
    this.whole.docs = null;
    return super.clearAll();
  }
}

/**
 * A list of the caller's documents whose reads the schedule tracks. `onPage` gets each page and
 * whether it is the whole list (read from the start and shorter than asked for).
 */
function trackedList<D>(
  reads: ReadSchedule,
  list: PagedList<D>,
  onPage: (docs: D[], whole: boolean) => void,
): PagedList<D> {
  return {
    count: () => reads.track(() => list.count()),
    page: async (offset, limit) => {
      const docs = await reads.track(() => list.page(offset, limit));
      onPage(docs, offset === 0 && docs.length < limit);
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
  knowledgeBase: ByIdLoader<KnowledgeBaseDoc>;
  file: ByIdLoader<FileDoc>;
  conversation: ByIdLoader<ConversationDoc>;
  chatflow: ByIdLoader<ChatflowDoc>;
  workflow: ByIdLoader<WorkflowDoc>;
  chatflowsByWorkflow: GroupLoader<ChatflowDoc>;
  filesOfKnowledgeBase: GroupLoader<FileDoc>;
  fileByImage: DataLoader<string, FileDoc | null>;
  /** The caller's paged lists; each page read primes its collection's by-id loader. */
  lists: ReturnType<typeof ownedLists>;
}

function ownedLists({ stores, viewer, loaders }: LoaderScope) {
  const { mongo } = stores;
  const { reads } = loaders;
  // Only pages of the viewer's own documents stand in for the loaders' reads.
  const own = (username: string) => username === viewer?.username;
  return {
    knowledgeBases: (username: string) =>
      trackedList(reads, mongo.knowledgeBases.list(username), (docs) => {
        if (own(username)) loaders.knowledgeBase.primeRead(docs);
      }),
    /** The files of the caller's listed knowledge bases (their ids are read first). */
    files: async (username: string, keyword: string | null | undefined) => {
      const knowledgeBaseIds = await reads.track(() => mongo.knowledgeBases.listedIds(username));
      return trackedList(reads, mongo.files.list(username, knowledgeBaseIds, keyword), (docs) => {
        if (own(username)) loaders.file.primeRead(docs);
      });
    },
    conversations: (username: string) =>
      trackedList(reads, mongo.conversations.list(username), (docs) => {
        if (own(username)) loaders.conversation.primeRead(docs);
      }),
    // The list and the by-workflow groups read the same documents in the same order.
    chatflows: (username: string) =>
      trackedList(reads, mongo.chatflows.list(username), (docs, whole) => {
        if (!own(username)) return;
        loaders.chatflow.primeRead(docs);
        if (whole) loaders.chatflowsByWorkflow.primeWhole(docs);
      }),
    workflows: (username: string) =>
      trackedList(reads, mongo.workflows.list(username), (docs) => {
        if (own(username)) loaders.workflow.primeRead(docs);
      }),
  };
}

const makeLoaders = lazyObjects<LoaderScope, LoaderSet>({
  reads: () => new ReadSchedule(),
  knowledgeBase: (scope) =>
    ByIdLoader.create("knowledge_bases", "knowledge_base_id", scope, scope.stores.mongo.knowledgeBases.findByIds),
  file: (scope) => ByIdLoader.create("files", "file_id", scope, scope.stores.mongo.files.findByIds, FILES_STAGE),
  conversation: (scope) =>
    ByIdLoader.create("conversations", "conversation_id", scope, scope.stores.mongo.conversations.findByIds),
  chatflow: (scope) => ByIdLoader.create("chatflows", "chatflow_id", scope, scope.stores.mongo.chatflows.findByIds),
  workflow: (scope) => ByIdLoader.create("workflows", "workflow_id", scope, scope.stores.mongo.workflows.findByIds),
  chatflowsByWorkflow: (scope) =>
    GroupLoader.create("chatflows", "workflow_id", scope, scope.stores.mongo.chatflows.findByWorkflowIds),
  /** The caller's files of a knowledge base: the page list searches score. */
  filesOfKnowledgeBase: (scope) =>
    GroupLoader.create("files", "knowledge_db_id", scope, scope.stores.mongo.files.findByKnowledgeBaseIds, FILES_STAGE),
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

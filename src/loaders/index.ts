// The per-request DataLoaders. Every cross-document hop goes through one, so a query issues a
// fixed number of Mongo commands however many documents it touches. Each loader answers only with
// the caller's own documents: another user's id loads exactly like a missing one (null).
import DataLoader from "dataloader";
import type { Collection, Filter, FindOptions, Sort } from "mongodb";
import type { Viewer } from "../context.js";
import type { ChatflowDoc, ConversationDoc, FileDoc, KnowledgeBaseDoc, WorkflowDoc } from "../stores/documents.js";
import type { Stores } from "../stores/index.js";
import { observeStoreCall } from "../stores/observe.js";
import { lazyObjects } from "../lib/lazy.js";
import { observedBatch } from "./observe.js";

type Owned = { username: string };

/** One observed Mongo read: batch size and latency go to /metrics. */
function observedFind<D extends Owned>(
  collection: Collection<D>,
  filter: Filter<D>,
  options: FindOptions,
): Promise<D[]> {
  return observeStoreCall(
    "mongo",
    () => collection.find(filter, { ...options, projection: { _id: 0 } }).toArray() as Promise<D[]>,
    `${collection.collectionName}.find`,
  );
}

/** Batches `find({[key]: {$in: ids}})` and returns the caller's document per id, in order. */
function byIdLoader<D extends Owned, K extends keyof D & string>(
  collection: Collection<D>,
  key: K,
  viewer: Viewer | null,
  extra: Filter<D> = {},
): DataLoader<string, D | null> {
  return new DataLoader(
    observedBatch(`${collection.collectionName}.${key}`, async (ids: readonly string[]) => {
      if (!viewer) return ids.map(() => null);
      const filter = { ...extra, [key]: { $in: [...ids] }, username: viewer.username } as Filter<D>;
      // One batch past the most documents that can match, so the answer never needs a getMore.
      const docs = await observedFind(collection, filter, { batchSize: ids.length + 1 });
      const byId = new Map(docs.map((doc) => [doc[key] as unknown as string, doc]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
  );
}

/** Batches `find({[key]: {$in: keys}})` and groups the caller's documents per key, in `sort` order. */
function groupLoader<D extends Owned, K extends keyof D & string>(
  collection: Collection<D>,
  key: K,
  viewer: Viewer | null,
  extra: Filter<D>,
  sort: Sort,
): DataLoader<string, D[]> {
  return new DataLoader(
    observedBatch(`${collection.collectionName}.by.${key}`, async (keys: readonly string[]) => {
      if (!viewer) return keys.map(() => []);
      const docs = await observedFind(
        collection,
        { ...extra, [key]: { $in: [...keys] }, username: viewer.username } as Filter<D>,
        { sort },
      );
      const groups = new Map<string, D[]>(keys.map((k) => [k, []]));
      for (const doc of docs) groups.get(doc[key] as unknown as string)?.push(doc);
      return keys.map((k) => groups.get(k) ?? []);
    }),
  );
}

interface LoaderScope {
  stores: Stores;
  viewer: Viewer | null;
}

const live = { is_delete: false } as const;

interface LoaderSet {
  knowledgeBase: DataLoader<string, KnowledgeBaseDoc | null>;
  file: DataLoader<string, FileDoc | null>;
  conversation: DataLoader<string, ConversationDoc | null>;
  chatflow: DataLoader<string, ChatflowDoc | null>;
  workflow: DataLoader<string, WorkflowDoc | null>;
  chatflowsByWorkflow: DataLoader<string, ChatflowDoc[]>;
  filesOfKnowledgeBase: DataLoader<string, FileDoc[]>;
  fileByImage: DataLoader<string, FileDoc | null>;
}

const makeLoaders = lazyObjects<LoaderScope, LoaderSet>({
  knowledgeBase: ({ stores, viewer }: LoaderScope) =>
    byIdLoader(stores.mongo.knowledgeBases, "knowledge_base_id", viewer),
  file: ({ stores, viewer }: LoaderScope) => byIdLoader(stores.mongo.files, "file_id", viewer),
  conversation: ({ stores, viewer }: LoaderScope) =>
    byIdLoader(stores.mongo.conversations, "conversation_id", viewer, live),
  chatflow: ({ stores, viewer }: LoaderScope) => byIdLoader(stores.mongo.chatflows, "chatflow_id", viewer, live),
  workflow: ({ stores, viewer }: LoaderScope) => byIdLoader(stores.mongo.workflows, "workflow_id", viewer, live),
  chatflowsByWorkflow: ({ stores, viewer }: LoaderScope) =>
    groupLoader(stores.mongo.chatflows, "workflow_id", viewer, live, { last_modify_at: -1, chatflow_id: 1 }),
  /** The caller's files of a knowledge base: the page list searches score. */
  filesOfKnowledgeBase: ({ stores, viewer }: LoaderScope) =>
    groupLoader(stores.mongo.files, "knowledge_db_id", viewer, {}, { file_id: 1 }),
  /** The file that holds a page image (`files.images[].images_id`), for page-image node ids. */
  fileByImage: ({ stores, viewer }: LoaderScope) =>
    new DataLoader<string, FileDoc | null>(
      observedBatch("files.images.images_id", async (imageIds: readonly string[]) => {
        if (!viewer) return imageIds.map(() => null);
        const docs = await observedFind(
          stores.mongo.files,
          { "images.images_id": { $in: [...imageIds] }, username: viewer.username },
          {},
        );
        const byImage = new Map<string, FileDoc>();
        for (const doc of docs) for (const image of doc.images) byImage.set(image.images_id, doc);
        return imageIds.map((id) => byImage.get(id) ?? null);
      }),
    ),
});

/** The caller's loaders; each DataLoader is made when first used (most operations use few or none). */
export function createLoaders(stores: Stores, viewer: Viewer | null): LoaderSet {
  return makeLoaders({ stores, viewer });
}

/** The per-request DataLoaders: created for every operation and every subscription event. */
export type Loaders = ReturnType<typeof createLoaders>;

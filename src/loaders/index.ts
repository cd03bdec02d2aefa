// The per-request DataLoaders. Every cross-document hop goes through one, so a query issues a
// fixed number of Mongo commands however many documents it touches. Each loader answers only with
// the caller's own documents: another user's id loads exactly like a missing one (null).
import DataLoader from "dataloader";
import type { Filter } from "mongodb";
import type { Viewer } from "../context.js";
import type { ChatflowDoc, ConversationDoc, FileDoc, KnowledgeBaseDoc, WorkflowDoc } from "../stores/documents.js";
import type { Stores } from "../stores/index.js";

type Owned = { username: string };

/** Batches `find({[key]: {$in: ids}})` and returns the caller's document per id, in order. */
function byIdLoader<D extends Owned, K extends keyof D & string>(
  find: (filter: Filter<D>, batchSize: number) => Promise<D[]>,
  key: K,
  viewer: Viewer | null,
  extra: Filter<D> = {},
): DataLoader<string, D | null> {
  return new DataLoader(async (ids) => {
    if (!viewer) return ids.map(() => null);
    // One batch past the most documents that can match, so the answer never needs a getMore.
    const docs = await find({ ...extra, [key]: { $in: [...ids] }, username: viewer.username } as Filter<D>, ids.length + 1);
    const byId = new Map(docs.map((doc) => [doc[key] as unknown as string, doc]));
    return ids.map((id) => byId.get(id) ?? null);
  });
}

/** Batches `find({[key]: {$in: keys}})` and groups the caller's documents per key. */
function groupLoader<D extends Owned, K extends keyof D & string>(
  find: (filter: Filter<D>) => Promise<D[]>,
  key: K,
  viewer: Viewer | null,
  extra: Filter<D> = {},
): DataLoader<string, D[]> {
  return new DataLoader(async (keys) => {
    if (!viewer) return keys.map(() => []);
    const docs = await find({ ...extra, [key]: { $in: [...keys] }, username: viewer.username } as Filter<D>);
    const groups = new Map<string, D[]>(keys.map((k) => [k, []]));
    for (const doc of docs) groups.get(doc[key] as unknown as string)?.push(doc);
    return keys.map((k) => groups.get(k) ?? []);
  });
}

export function createLoaders(stores: Stores, viewer: Viewer | null) {
  const { mongo } = stores;
  const noId = (batchSize?: number) => ({ projection: { _id: 0 }, batchSize }) as const;
  return {
    knowledgeBase: byIdLoader<KnowledgeBaseDoc, "knowledge_base_id">((f, n) => mongo.knowledgeBases.find(f, noId(n)).toArray(), "knowledge_base_id", viewer),
    file: byIdLoader<FileDoc, "file_id">((f, n) => mongo.files.find(f, noId(n)).toArray(), "file_id", viewer),
    conversation: byIdLoader<ConversationDoc, "conversation_id">((f, n) => mongo.conversations.find(f, noId(n)).toArray(), "conversation_id", viewer, { is_delete: false }),
    chatflow: byIdLoader<ChatflowDoc, "chatflow_id">((f, n) => mongo.chatflows.find(f, noId(n)).toArray(), "chatflow_id", viewer, { is_delete: false }),
    workflow: byIdLoader<WorkflowDoc, "workflow_id">((f, n) => mongo.workflows.find(f, noId(n)).toArray(), "workflow_id", viewer, { is_delete: false }),
    chatflowsByWorkflow: groupLoader<ChatflowDoc, "workflow_id">(
      (f) => mongo.chatflows.find(f, { projection: { _id: 0 }, sort: { last_modify_at: -1, chatflow_id: 1 } }).toArray(),
      "workflow_id", viewer, { is_delete: false },
    ),
    /** The file that holds a page image (`files.images[].images_id`), for page-image node ids. */
    fileByImage: new DataLoader<string, FileDoc | null>(async (imageIds) => {
      if (!viewer) return imageIds.map(() => null);
      const docs = await mongo.files.find({ "images.images_id": { $in: [...imageIds] }, username: viewer.username }, noId()).toArray();
      const byImage = new Map<string, FileDoc>();
      for (const doc of docs) for (const image of doc.images) byImage.set(image.images_id, doc);
      return imageIds.map((id) => byImage.get(id) ?? null);
    }),
  };
}

/** The per-request DataLoaders: created for every operation and every subscription event. */
export type Loaders = ReturnType<typeof createLoaders>;

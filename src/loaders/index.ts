// The per-request DataLoaders. Every cross-document hop goes through one, so a query issues a
// fixed number of Mongo commands however many documents it touches. Each loader answers only with
// the caller's own documents: another user's id loads exactly like a missing one (null).
import DataLoader from "dataloader";
import type { Viewer } from "../context.js";
import type { FileDoc } from "../stores/documents.js";
import type { Stores } from "../stores/index.js";
import { observedBatch } from "./observe.js";

type FindOwned<D> = (username: string, keys: readonly string[]) => Promise<D[]>;

/** Batches one repository read per tick and returns the caller's document per id, in order. */
function byIdLoader<D>(
  name: string,
  idOf: (doc: D) => string,
  viewer: Viewer | null,
  find: FindOwned<D>,
): DataLoader<string, D | null> {
  return new DataLoader(
    observedBatch(name, async (ids: readonly string[]) => {
      if (!viewer) return ids.map(() => null);
      const byId = new Map((await find(viewer.username, ids)).map((doc) => [idOf(doc), doc]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
  );
}

/** Batches one repository read per tick and groups the caller's documents per key, in the order read. */
function groupLoader<D>(
  name: string,
  keyOf: (doc: D) => string,
  viewer: Viewer | null,
  find: FindOwned<D>,
): DataLoader<string, D[]> {
  return new DataLoader(
    observedBatch(name, async (keys: readonly string[]) => {
      if (!viewer) return keys.map(() => []);
      const groups = new Map<string, D[]>(keys.map((k) => [k, []]));
      for (const doc of await find(viewer.username, keys)) groups.get(keyOf(doc))?.push(doc);
      return keys.map((k) => groups.get(k) ?? []);
    }),
  );
}

export function createLoaders(stores: Stores, viewer: Viewer | null) {
  const { mongo } = stores;
  return {
    knowledgeBase: byIdLoader(
      "knowledge_bases.knowledge_base_id",
      (kb) => kb.knowledge_base_id,
      viewer,
      mongo.knowledgeBases.findByIds,
    ),
    file: byIdLoader("files.file_id", (file) => file.file_id, viewer, mongo.files.findByIds),
    conversation: byIdLoader(
      "conversations.conversation_id",
      (conversation) => conversation.conversation_id,
      viewer,
      mongo.conversations.findByIds,
    ),
    chatflow: byIdLoader(
      "chatflows.chatflow_id",
      (chatflow) => chatflow.chatflow_id,
      viewer,
      mongo.chatflows.findByIds,
    ),
    workflow: byIdLoader(
      "workflows.workflow_id",
      (workflow) => workflow.workflow_id,
      viewer,
      mongo.workflows.findByIds,
    ),
    chatflowsByWorkflow: groupLoader(
      "chatflows.by.workflow_id",
      (chatflow) => chatflow.workflow_id,
      viewer,
      mongo.chatflows.findByWorkflowIds,
    ),
    /** The file that holds a page image (`files.images[].images_id`), for page-image node ids. */
    fileByImage: new DataLoader<string, FileDoc | null>(
      observedBatch("files.images.images_id", async (imageIds: readonly string[]) => {
        if (!viewer) return imageIds.map(() => null);
        const byImage = new Map<string, FileDoc>();
        for (const doc of await mongo.files.findByImageIds(viewer.username, imageIds))
          for (const image of doc.images) byImage.set(image.images_id, doc);
        return imageIds.map((id) => byImage.get(id) ?? null);
      }),
    ),
  };
}

/** The per-request DataLoaders: created for every operation and every subscription event. */
export type Loaders = ReturnType<typeof createLoaders>;

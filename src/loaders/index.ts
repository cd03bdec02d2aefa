// The per-request DataLoaders. Every cross-document hop goes through one, so a query issues a
// fixed number of Mongo commands however many documents it touches. Each loader answers only with
// the caller's own documents: another user's id loads exactly like a missing one (null).
import DataLoader from "dataloader";
import type { Viewer } from "../context.js";
import type { ChatflowDoc, ConversationDoc, FileDoc, KnowledgeBaseDoc, WorkflowDoc } from "../stores/documents.js";
import type { Stores } from "../stores/index.js";
import { lazyObjects } from "../lib/lazy.js";
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

interface LoaderScope {
  stores: Stores;
  viewer: Viewer | null;
}

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
    byIdLoader(
      "knowledge_bases.knowledge_base_id",
      (kb) => kb.knowledge_base_id,
      viewer,
      stores.mongo.knowledgeBases.findByIds,
    ),
  file: ({ stores, viewer }: LoaderScope) =>
    byIdLoader("files.file_id", (file) => file.file_id, viewer, stores.mongo.files.findByIds),
  conversation: ({ stores, viewer }: LoaderScope) =>
    byIdLoader(
      "conversations.conversation_id",
      (conversation) => conversation.conversation_id,
      viewer,
      stores.mongo.conversations.findByIds,
    ),
  chatflow: ({ stores, viewer }: LoaderScope) =>
    byIdLoader("chatflows.chatflow_id", (chatflow) => chatflow.chatflow_id, viewer, stores.mongo.chatflows.findByIds),
  workflow: ({ stores, viewer }: LoaderScope) =>
    byIdLoader("workflows.workflow_id", (workflow) => workflow.workflow_id, viewer, stores.mongo.workflows.findByIds),
  chatflowsByWorkflow: ({ stores, viewer }: LoaderScope) =>
    groupLoader(
      "chatflows.by.workflow_id",
      (chatflow) => chatflow.workflow_id,
      viewer,
      stores.mongo.chatflows.findByWorkflowIds,
    ),
  /** The caller's files of a knowledge base: the page list searches score. */
  filesOfKnowledgeBase: ({ stores, viewer }: LoaderScope) =>
    groupLoader(
      "files.by.knowledge_db_id",
      (file) => file.knowledge_db_id,
      viewer,
      stores.mongo.files.findByKnowledgeBaseIds,
    ),
  /** The file that holds a page image (`files.images[].images_id`), for page-image node ids. */
  fileByImage: ({ stores, viewer }: LoaderScope) =>
    new DataLoader<string, FileDoc | null>(
      observedBatch("files.images.images_id", async (imageIds: readonly string[]) => {
        if (!viewer) return imageIds.map(() => null);
        const byImage = new Map<string, FileDoc>();
        for (const doc of await stores.mongo.files.findByImageIds(viewer.username, imageIds))
          for (const image of doc.images) byImage.set(image.images_id, doc);
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

// The per-request DataLoaders and list readers: each answers only with the caller's own documents, and every
// read goes through the request's read schedule (docs/performance.md, "The profile's reads").
import type DataLoader from "dataloader";
import type { Viewer } from "../context.js";
import { lazyObjects } from "../lib/lazy.js";
import { ReadSchedule } from "../lib/read-schedule.js";
import type { ChatflowDoc, ConversationDoc, FileDoc, KnowledgeBaseDoc, WorkflowDoc } from "../stores/documents.js";
import type { Stores } from "../stores/index.js";
import { ByIdLoader } from "./by-id.js";
import { GroupWindowLoader } from "./group-windows.js";
import { ownedLists, type OwnedLists } from "./lists.js";
import { fileByImageLoader } from "./page-images.js";
import { FILES_STAGE, type LoaderScope } from "./scope.js";

/** The per-request DataLoaders: created for every operation and every subscription event. */
export interface Loaders {
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
  fileByImage: DataLoader<string, FileDoc | null>;
  lists: OwnedLists;
}

/** What the set's loaders are made from; `loaders` is the set, so a list primes its collection's by-id loader. */
export interface LoaderSetScope extends LoaderScope {
  stores: Stores;
  loaders: Loaders;
}

const makeLoaders = lazyObjects<LoaderSetScope, Loaders>({
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
  fileByImage: (scope) => fileByImageLoader(scope, scope.stores.mongo.files.findByImageIds),
  lists: ownedLists,
});

/** The caller's loaders; each DataLoader is made when first used (most operations use few or none). */
export function createLoaders(stores: Stores, viewer: Viewer | null): Loaders {
  const scope = { stores, viewer } as LoaderSetScope;
  scope.loaders = makeLoaders(scope);
  return scope.loaders;
}

import { setTimeout as sleep } from "node:timers/promises";
import { MongoClient, type Collection, type Db, type IndexSpecification } from "mongodb";
import type { Config } from "../config.js";
import type {
  ChatflowDoc,
  ConversationDoc,
  CustomNodesDoc,
  FileDoc,
  KnowledgeBaseDoc,
  ModelConfigDoc,
  WorkflowDoc,
} from "./documents.js";
import { SettledFiles } from "../lib/settled-files.js";
import { probe, type StoreHealth } from "./health.js";
import { chatflowRepository, type ChatflowRepository } from "./mongo/chatflows.js";
import { conversationRepository, type ConversationRepository } from "./mongo/conversations.js";
import { customNodeRepository, type CustomNodeRepository } from "./mongo/custom-nodes.js";
import { fileRepository, type FileRepository } from "./mongo/files.js";
import { knowledgeBaseRepository, type KnowledgeBaseRepository } from "./mongo/knowledge-bases.js";
import { modelConfigRepository, type ModelConfigRepository } from "./mongo/model-configs.js";
import { workflowRepository, type WorkflowRepository } from "./mongo/workflows.js";
import type { UntilConnected } from "./mongo/collection.js";
import { observeStoreCall } from "./observe.js";
import { withTimeout } from "./timeout.js";

/** LAYRA's collections, raw: for the repositories below, and for tests and tools that write as LAYRA does. */
export interface MongoCollections {
  knowledgeBases: Collection<KnowledgeBaseDoc>;
  files: Collection<FileDoc>;
  conversations: Collection<ConversationDoc>;
  chatflows: Collection<ChatflowDoc>;
  workflows: Collection<WorkflowDoc>;
  modelConfig: Collection<ModelConfigDoc>;
  nodes: Collection<CustomNodesDoc>;
}

interface IndexPlan {
  collection: keyof MongoCollections;
  name: string;
  keys: IndexSpecification;
  unique?: boolean;
}

/**
 * LAYRA's indexes (docs/layra-contract.md, "Indexes") under LAYRA's own names, so its start-up `create_index` calls are
 * no-ops, plus the two it gets wrong under names LAYRA never uses: its chatflows index is on a field
 * `workflow` that no document has, and nothing leads with `workflows.workflow_id`.
 */
export const INDEX_PLAN: readonly IndexPlan[] = [
  { collection: "knowledgeBases", name: "unique_kb_id", keys: { knowledge_base_id: 1 }, unique: true },
  { collection: "knowledgeBases", name: "user_kb_query", keys: { username: 1, is_delete: 1 } },
  { collection: "modelConfig", name: "unique_config_id", keys: { username: 1 }, unique: true },
  { collection: "files", name: "unique_file_id", keys: { file_id: 1 }, unique: true },
  { collection: "files", name: "kb_file_query", keys: { knowledge_db_id: 1 } },
  { collection: "conversations", name: "unique_conversation_id", keys: { conversation_id: 1 }, unique: true },
  { collection: "conversations", name: "user_conversations", keys: { username: 1, last_modify_at: -1 } },
  { collection: "chatflows", name: "unique_chatflow_id", keys: { chatflow_id: 1 }, unique: true },
  // LAYRA's buggy index, kept so both services agree on the index set.
  { collection: "chatflows", name: "workflow_chatflows", keys: { workflow: 1, last_modify_at: -1 } },
  { collection: "chatflows", name: "gateway_chatflows_by_workflow_id", keys: { workflow_id: 1, last_modify_at: -1 } },
  { collection: "workflows", name: "username_workflow_id_unique", keys: { username: 1, workflow_id: 1 }, unique: true },
  { collection: "workflows", name: "user_workflows", keys: { username: 1, last_modify_at: -1 } },
  { collection: "workflows", name: "gateway_workflows_by_workflow_id", keys: { workflow_id: 1 } },
  { collection: "nodes", name: "username_1", keys: { username: 1 }, unique: true },
];

/** One operation of Mongo's profiler, for operators. */
export interface SlowOperation {
  op: string;
  namespace: string;
  millis: number;
  at: Date | null;
}

/** Pages of settled files kept for searches, across bases: each costs its document entry, about a kilobyte. */
const SETTLED_FILES_MAX_PAGES = 100_000;

export interface MongoStore {
  /** The driver client, for its command-monitoring events. */
  client: MongoClient;
  /** The database, for tests and tools (which drop it or write as LAYRA does); request code uses the repositories. */
  db: Db;
  knowledgeBases: KnowledgeBaseRepository;
  files: FileRepository;
  conversations: ConversationRepository;
  chatflows: ChatflowRepository;
  workflows: WorkflowRepository;
  modelConfigs: ModelConfigRepository;
  customNodes: CustomNodeRepository;
  /** The files whose page lists can no longer change, for searches (src/lib/settled-files.ts). */
  settledFiles: SettledFiles<FileDoc>;
  /**
   * The profiler's level and its slowest recent operations over `thresholdMs` (at most `limit`);
   * null when the server cannot report a level (FerretDB, managed services).
   */
  slowOperations(thresholdMs: number, limit: number): Promise<{ level: number; slow: SlowOperation[] } | null>;
  /** Creates every index of INDEX_PLAN that is missing; creating an existing one is a no-op. */
  ensureIndexes(): Promise<void>;
  health(): Promise<StoreHealth>;
  close(): Promise<void>;
}

export function createMongoStore(config: Config): MongoStore {
  const client = new MongoClient(config.mongo.url, {
    maxPoolSize: config.mongo.maxPoolSize,
    minPoolSize: config.mongo.minPoolSize,
    serverSelectionTimeoutMS: config.storeTimeoutMs,
    connectTimeoutMS: config.storeTimeoutMs,
    monitorCommands: true,
  });
  const db = client.db(config.mongo.database);
  // Once connected the driver rides out outages by itself, but a failed connect attempt closes its
  // topology, and every command waiting on it or sent before the next attempt fails with "Topology is
  // closed". So connect in the background until it succeeds (each attempt on a fresh topology).
  let closing = false;
  let connected = false;
  let markConnected = () => {};
  const firstConnect = new Promise<void>((resolve) => (markConnected = resolve));
  void (async () => {
    while (!closing) {
      try {
        await client.connect();
        connected = true;
        markConnected();
        return;
      } catch {
        await sleep(500);
      }
    }
  })();
  // Until then repository commands, index creation and the health probe wait for it, as long as they
  // would wait for any answer.
  const untilConnected: UntilConnected = () =>
    connected ? Promise.resolve() : withTimeout("mongo", config.storeTimeoutMs, firstConnect);
  const collections = mongoCollections(db);
  return {
    client,
    db,
    knowledgeBases: knowledgeBaseRepository(collections.knowledgeBases, untilConnected),
    files: fileRepository(collections.files, untilConnected),
    conversations: conversationRepository(collections.conversations, untilConnected),
    chatflows: chatflowRepository(collections.chatflows, untilConnected),
    workflows: workflowRepository(collections.workflows, untilConnected),
    modelConfigs: modelConfigRepository(collections.modelConfig, untilConnected),
    customNodes: customNodeRepository(collections.nodes, untilConnected),
    settledFiles: new SettledFiles(SETTLED_FILES_MAX_PAGES),
    slowOperations: async (thresholdMs, limit) => {
      let level: number;
      try {
        level = Number((await observeStoreCall("mongo", () => db.command({ profile: -1 }), "profile")).was);
      } catch {
        return null;
      }
      if (level === 0) return { level, slow: [] };
      const entries = await observeStoreCall(
        "mongo",
        () =>
          db
            .collection<{ op: string; ns: string; millis: number; ts?: Date }>("system.profile")
            .find({ millis: { $gt: thresholdMs } }, { sort: { ts: -1 }, limit })
            .toArray(),
        "system.profile.find",
      );
      return { level, slow: entries.map((e) => ({ op: e.op, namespace: e.ns, millis: e.millis, at: e.ts ?? null })) };
    },
    ensureIndexes: async () => {
      await untilConnected();
      for (const plan of INDEX_PLAN) {
        const collection = collections[plan.collection];
        await observeStoreCall(
          "mongo",
          () => collection.createIndex(plan.keys, { name: plan.name, unique: plan.unique ?? false }),
          `${collection.collectionName}.createIndex`,
        );
      }
    },
    health: () =>
      probe("mongo", () =>
        withTimeout(
          "mongo",
          config.storeTimeoutMs,
          untilConnected().then(() => db.command({ ping: 1 })),
        ),
      ),
    close: () => {
      closing = true;
      return client.close();
    },
  };
}

export function mongoCollections(db: Db): MongoCollections {
  return {
    knowledgeBases: db.collection("knowledge_bases"),
    files: db.collection("files"),
    conversations: db.collection("conversations"),
    chatflows: db.collection("chatflows"),
    workflows: db.collection("workflows"),
    modelConfig: db.collection("model_config"),
    nodes: db.collection("nodes"),
  };
}

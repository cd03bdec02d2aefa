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
import { probe, type StoreHealth } from "./health.js";
import { withTimeout } from "./timeout.js";

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

export interface MongoStore extends MongoCollections {
  client: MongoClient;
  db: Db;
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
  // Once connected the driver rides out outages by itself, but a failed first connect leaves the
  // client closed for good ("Topology is closed"), so keep connecting until it succeeds.
  let closing = false;
  void (async () => {
    while (!closing) {
      try {
        await client.connect();
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  })();
  const collections: MongoCollections = {
    knowledgeBases: db.collection("knowledge_bases"),
    files: db.collection("files"),
    conversations: db.collection("conversations"),
    chatflows: db.collection("chatflows"),
    workflows: db.collection("workflows"),
    modelConfig: db.collection("model_config"),
    nodes: db.collection("nodes"),
  };
  return {
    client,
    db,
    ...collections,
    ensureIndexes: async () => {
      for (const plan of INDEX_PLAN) {
        await collections[plan.collection].createIndex(plan.keys, { name: plan.name, unique: plan.unique ?? false });
      }
    },
    health: () => probe("mongo", () => withTimeout("mongo", config.storeTimeoutMs, db.command({ ping: 1 }))),
    close: () => {
      closing = true;
      return client.close();
    },
  };
}

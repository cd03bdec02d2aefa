import { MongoClient, type Collection, type Db } from "mongodb";
import type { Config } from "../config.js";
import type {
  ChatflowDoc, ConversationDoc, CustomNodesDoc, FileDoc, KnowledgeBaseDoc, ModelConfigDoc, WorkflowDoc,
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

export interface MongoStore extends MongoCollections {
  client: MongoClient;
  db: Db;
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
  return {
    client,
    db,
    knowledgeBases: db.collection("knowledge_bases"),
    files: db.collection("files"),
    conversations: db.collection("conversations"),
    chatflows: db.collection("chatflows"),
    workflows: db.collection("workflows"),
    modelConfig: db.collection("model_config"),
    nodes: db.collection("nodes"),
    health: () => probe("mongo", () => withTimeout("mongo", config.storeTimeoutMs, db.command({ ping: 1 }))),
    close: () => {
      closing = true;
      return client.close();
    },
  };
}

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
  // The driver connects on first use and reconnects by itself, so the gateway starts with Mongo down.
  const client = new MongoClient(config.mongo.url, {
    maxPoolSize: config.mongo.maxPoolSize,
    minPoolSize: config.mongo.minPoolSize,
    serverSelectionTimeoutMS: config.storeTimeoutMs,
    connectTimeoutMS: config.storeTimeoutMs,
    monitorCommands: true,
  });
  const db = client.db(config.mongo.database);
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
    close: () => client.close(),
  };
}

import { requireOperator } from "../domain/auth.js";
import {
  storeStats,
  type CollectionStats,
  type RedisDatabaseStats,
  type RedisKeySize,
  type SlowOperation,
  type StoreStats,
} from "../ops/store-stats.js";
import { builder } from "./builder.js";

const CollectionStatsRef = builder.objectRef<CollectionStats>("CollectionStats").implement({
  description: "One Milvus collection: its rows (token vectors) and its index.",
  fields: (t) => ({
    collection: t.exposeString("collection"),
    knowledgeBaseId: t.exposeString("knowledgeBaseId", {
      nullable: true,
      description: "Null when no knowledge base names the collection.",
    }),
    rowCount: t.exposeFloat("rowCount"),
    indexType: t.exposeString("indexType", { nullable: true }),
    indexParams: t.expose("indexParams", { type: "JSON", nullable: true }),
    metricType: t.exposeString("metricType", { nullable: true }),
    loaded: t.exposeBoolean("loaded"),
  }),
});

const RedisDatabaseStatsRef = builder.objectRef<RedisDatabaseStats>("RedisDatabaseStats").implement({
  fields: (t) => ({
    purpose: t.exposeString("purpose", { description: "token, task, lock or cache" }),
    db: t.exposeInt("db"),
    keys: t.exposeInt("keys"),
  }),
});

const RedisKeySizeRef = builder.objectRef<RedisKeySize>("RedisKeySize").implement({
  fields: (t) => ({ db: t.exposeInt("db"), key: t.exposeString("key"), bytes: t.exposeInt("bytes") }),
});

const SlowOperationRef = builder.objectRef<SlowOperation>("SlowOperation").implement({
  fields: (t) => ({
    op: t.exposeString("op"),
    namespace: t.exposeString("namespace"),
    millis: t.exposeFloat("millis"),
    at: t.expose("at", { type: "DateTime", nullable: true }),
  }),
});

const StoreStatsRef = builder.objectRef<StoreStats>("StoreStats").implement({
  description: "The seed's operations view of the stores (operators only).",
  fields: (t) => ({
    collections: t.field({ type: [CollectionStatsRef], resolve: (s) => s.collections }),
    redisUsedMemoryBytes: t.exposeFloat("redisUsedMemoryBytes"),
    redisDatabases: t.field({ type: [RedisDatabaseStatsRef], resolve: (s) => s.redisDatabases }),
    largestRedisKeys: t.field({
      type: [RedisKeySizeRef],
      description: "The largest of up to 1,000 sampled keys per database.",
      resolve: (s) => s.largestRedisKeys,
    }),
    mongoProfilingLevel: t.exposeInt("mongoProfilingLevel", {
      nullable: true,
      description: "Null when the server cannot report it.",
    }),
    mongoSlowOperations: t.field({
      type: [SlowOperationRef],
      description: "Operations over 100 ms, when profiling is on.",
      resolve: (s) => s.mongoSlowOperations,
    }),
  }),
});

builder.queryField("storeStats", (t) =>
  t.withAuth({ loggedIn: true }).field({
    type: StoreStatsRef,
    description: "Milvus collection stats, Redis memory and keys, Mongo slow operations. Needs an operator username.",
    resolve: (_root, _args, context) => {
      requireOperator(context, "storeStats");
      return storeStats(context);
    },
  }),
);

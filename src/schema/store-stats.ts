import { requireOperator } from "../resolvers/auth.js";
import {
  storeStats,
  type CollectionStats,
  type RedisDatabaseStats,
  type RedisKeyPattern,
  type SlowOperation,
  type StoreStats,
} from "../resolvers/store-stats.js";
import { builder } from "./builder.js";
import { listSize } from "./lists.js";
import { capList } from "../lib/pagination.js";

const MAX_COLLECTIONS = 1000;

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

const RedisKeyPatternRef = builder.objectRef<RedisKeyPattern>("RedisKeyPattern").implement({
  description: "Sampled keys of one pattern in one database; key values are never shown (token keys are credentials).",
  fields: (t) => ({
    db: t.exposeInt("db"),
    pattern: t.exposeString("pattern", { description: "The key's first segment and `*`, e.g. `token:*`." }),
    keys: t.exposeInt("keys"),
    bytes: t.exposeFloat("bytes"),
    largestBytes: t.exposeFloat("largestBytes"),
  }),
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
    collections: t.field({
      type: [CollectionStatsRef],
      description: `At most ${MAX_COLLECTIONS} collections.`,
      ...listSize(MAX_COLLECTIONS),
      resolve: (s) => capList(s.collections, MAX_COLLECTIONS),
    }),
    redisUsedMemoryBytes: t.exposeFloat("redisUsedMemoryBytes"),
    redisDatabases: t.field({ type: [RedisDatabaseStatsRef], ...listSize(4), resolve: (s) => s.redisDatabases }),
    largestRedisKeyPatterns: t.field({
      type: [RedisKeyPatternRef],
      description: "Key patterns by total size over up to 1,000 sampled keys per database (at most 20).",
      ...listSize(20),
      resolve: (s) => s.largestRedisKeyPatterns,
    }),
    mongoProfilingLevel: t.exposeInt("mongoProfilingLevel", {
      nullable: true,
      description: "Null when the server cannot report it.",
    }),
    mongoSlowOperations: t.field({
      type: [SlowOperationRef],
      description: "Operations over 100 ms, when profiling is on (at most 10).",
      ...listSize(10),
      resolve: (s) => s.mongoSlowOperations,
    }),
  }),
});

builder.queryField("storeStats", (t) =>
  t.withAuth({ loggedIn: true }).field({
    type: StoreStatsRef,
    nullable: true,
    description: "Milvus collection stats, Redis memory and keys, Mongo slow operations. Needs an operator username.",
    resolve: (_root, _args, context) => {
      requireOperator(context, "storeStats");
      return storeStats(context);
    },
  }),
);

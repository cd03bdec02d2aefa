// The seed's operations queries (Milvus collection stats, Redis memory analysis, Mongo slow-query
// log), read through each store's own API. For operators only; bounded so a large deployment
// cannot turn one call into a full scan.
import type { Config } from "../config.js";
import type { StoreAccess } from "../context.js";
import type { Stores } from "../stores/index.js";
import { collectionName, type MilvusCollectionStats } from "../stores/milvus.js";
import type { SlowOperation } from "../stores/mongo.js";

export interface CollectionStats extends MilvusCollectionStats {
  /** Null for a collection no knowledge base names (left behind by a partial delete). */
  knowledgeBaseId: string | null;
}

export interface RedisDatabaseStats {
  purpose: "token" | "task" | "lock" | "cache";
  db: number;
  keys: number;
}

export interface RedisKeySize {
  db: number;
  key: string;
  bytes: number;
}

export type { SlowOperation };

export interface StoreStats {
  collections: CollectionStats[];
  redisUsedMemoryBytes: number;
  redisDatabases: RedisDatabaseStats[];
  largestRedisKeys: RedisKeySize[];
  /** Null when the server cannot report its profiling level (FerretDB, managed services). */
  mongoProfilingLevel: number | null;
  mongoSlowOperations: SlowOperation[];
}

const KEYS_SAMPLED_PER_DB = 1000;
const LARGEST_KEYS = 10;
const SLOW_OPERATIONS = 10;
const SLOW_MILLIS = 100;

async function collectionStats(stores: Stores): Promise<CollectionStats[]> {
  const [collections, kbIds] = await Promise.all([
    stores.milvus.collectionStats(),
    stores.mongo.knowledgeBases.allIds(),
  ]);
  const owner = new Map(kbIds.map((id) => [collectionName(id), id]));
  return collections.map((stats) => ({ ...stats, knowledgeBaseId: owner.get(stats.collection) ?? null }));
}

async function redisStats(config: Config, stores: Stores) {
  const info = await stores.redis.info();
  const used = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
  const keyspace = new Map([...info.matchAll(/^db(\d+):keys=(\d+)/gm)].map((m) => [Number(m[1]), Number(m[2])]));
  const purposes = ["token", "task", "lock", "cache"] as const;
  const databases = purposes.map((purpose) => ({
    purpose,
    db: config.redis.db[purpose],
    keys: keyspace.get(config.redis.db[purpose]) ?? 0,
  }));
  const sizes: RedisKeySize[] = [];
  for (const purpose of purposes) {
    for (const { key, bytes } of await stores.redis.sampleKeySizes(purpose, KEYS_SAMPLED_PER_DB))
      sizes.push({ db: config.redis.db[purpose], key, bytes });
  }
  sizes.sort((a, b) => b.bytes - a.bytes || a.key.localeCompare(b.key));
  return { used, databases, largest: sizes.slice(0, LARGEST_KEYS) };
}

async function mongoSlowOperations(stores: Stores): Promise<{ level: number | null; slow: SlowOperation[] }> {
  return (await stores.mongo.slowOperations(SLOW_MILLIS, SLOW_OPERATIONS)) ?? { level: null, slow: [] };
}

export async function storeStats({ config, stores }: StoreAccess): Promise<StoreStats> {
  const [collections, redis, mongo] = await Promise.all([
    collectionStats(stores),
    redisStats(config, stores),
    mongoSlowOperations(stores),
  ]);
  return {
    collections,
    redisUsedMemoryBytes: redis.used,
    redisDatabases: redis.databases,
    largestRedisKeys: redis.largest,
    mongoProfilingLevel: mongo.level,
    mongoSlowOperations: mongo.slow,
  };
}

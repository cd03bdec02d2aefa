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

/** Keys of one pattern in one database, among the sampled keys. Key values never appear: `token:{jwt}` is a live credential. */
export interface RedisKeyPattern {
  db: number;
  /** The key's first `:`-separated segment followed by `*` (`token:*`, `task:*`), or `*`. */
  pattern: string;
  keys: number;
  bytes: number;
  largestBytes: number;
}

export type { SlowOperation };

export interface StoreStats {
  collections: CollectionStats[];
  redisUsedMemoryBytes: number;
  redisDatabases: RedisDatabaseStats[];
  largestRedisKeyPatterns: RedisKeyPattern[];
  /** Null when the server cannot report its profiling level (FerretDB, managed services). */
  mongoProfilingLevel: number | null;
  mongoSlowOperations: SlowOperation[];
}

const KEYS_SAMPLED_PER_DB = 1000;
const LARGEST_PATTERNS = 20;
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

/**
 * A key's pattern: its first segment when that is a plain word (`token:*`, `task:*`, `lock:*`), else
 * `*`. Everything after the first `:` may be a secret (a JWT) or a user's id, so none of it is shown.
 */
function keyPattern(key: string): string {
  const match = /^([A-Za-z][\w-]{0,31}):/.exec(key);
  return match ? `${match[1]}:*` : "*";
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
  const patterns = new Map<string, RedisKeyPattern>();
  for (const purpose of purposes) {
    const db = config.redis.db[purpose];
    for (const { key, bytes } of await stores.redis.sampleKeySizes(purpose, KEYS_SAMPLED_PER_DB)) {
      const pattern = keyPattern(key);
      const entry = patterns.get(`${db} ${pattern}`) ?? { db, pattern, keys: 0, bytes: 0, largestBytes: 0 };
      entry.keys++;
      entry.bytes += bytes;
      entry.largestBytes = Math.max(entry.largestBytes, bytes);
      patterns.set(`${db} ${pattern}`, entry);
    }
  }
  const largest = [...patterns.values()].sort((a, b) => b.bytes - a.bytes || a.pattern.localeCompare(b.pattern));
  return { used, databases, largest: largest.slice(0, LARGEST_PATTERNS) };
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
    largestRedisKeyPatterns: redis.largest,
    mongoProfilingLevel: mongo.level,
    mongoSlowOperations: mongo.slow,
  };
}

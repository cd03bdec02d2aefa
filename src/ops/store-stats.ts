// The seed's operations queries (Milvus collection stats, Redis memory analysis, Mongo slow-query
// log), read through each store's own API. For operators only; bounded so a large deployment
// cannot turn one call into a full scan.
import type { Config } from "../config.js";
import type { StoreAccess } from "../context.js";
import type { Stores } from "../stores/index.js";
import { collectionName } from "../stores/milvus.js";

export interface CollectionStats {
  collection: string;
  /** Null for a collection no knowledge base names (left behind by a partial delete). */
  knowledgeBaseId: string | null;
  rowCount: number;
  indexType: string | null;
  indexParams: Record<string, unknown> | null;
  metricType: string | null;
  loaded: boolean;
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

export interface SlowOperation {
  op: string;
  namespace: string;
  millis: number;
  at: Date | null;
}

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
  const { client } = stores.milvus;
  const listed = await client.listCollections();
  const names = listed.data.map((c) => c.name).filter((name) => name.startsWith("colqwen"));
  const kbs = await stores.mongo.knowledgeBases.find({}, { projection: { _id: 0, knowledge_base_id: 1 } }).toArray();
  const owner = new Map(kbs.map((kb) => [collectionName(kb.knowledge_base_id), kb.knowledge_base_id]));
  return Promise.all(
    names.sort().map(async (collection) => {
      const [stats, index, load] = await Promise.all([
        client.getCollectionStatistics({ collection_name: collection }),
        client.describeIndex({ collection_name: collection }),
        client.getLoadState({ collection_name: collection }),
      ]);
      const params: Record<string, string> = Object.fromEntries(
        (index.index_descriptions?.[0]?.params ?? []).map((p) => [p.key, String(p.value)]),
      );
      return {
        collection,
        knowledgeBaseId: owner.get(collection) ?? null,
        rowCount: Number(stats.data.row_count),
        indexType: params.index_type ?? null,
        indexParams: params.params ? (JSON.parse(params.params) as Record<string, unknown>) : null,
        metricType: params.metric_type ?? null,
        loaded: String(load.state) === "LoadStateLoaded",
      };
    }),
  );
}

/**
 * A key's pattern: its first segment when that is a plain word (`token:*`, `task:*`, `lock:*`), else
 * `*`. Everything after the first `:` may be a secret (a JWT) or a user's id, so none of it is shown.
 */
export function keyPattern(key: string): string {
  const match = /^([A-Za-z][\w-]{0,31}):/.exec(key);
  return match ? `${match[1]}:*` : "*";
}

async function redisStats(config: Config, stores: Stores) {
  const info = await stores.redis.cache.info();
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
    const redis = stores.redis[purpose];
    let cursor = "0";
    let seen = 0;
    do {
      const [next, keys] = await redis.scan(cursor, "COUNT", 200);
      cursor = next;
      for (const key of keys.slice(0, KEYS_SAMPLED_PER_DB - seen)) {
        const db = config.redis.db[purpose];
        const bytes = Number(await redis.memory("USAGE", key)) || 0;
        const pattern = keyPattern(key);
        const entry = patterns.get(`${db} ${pattern}`) ?? { db, pattern, keys: 0, bytes: 0, largestBytes: 0 };
        entry.keys++;
        entry.bytes += bytes;
        entry.largestBytes = Math.max(entry.largestBytes, bytes);
        patterns.set(`${db} ${pattern}`, entry);
      }
      seen += keys.length;
    } while (cursor !== "0" && seen < KEYS_SAMPLED_PER_DB);
  }
  const largest = [...patterns.values()].sort((a, b) => b.bytes - a.bytes || a.pattern.localeCompare(b.pattern));
  return { used, databases, largest: largest.slice(0, LARGEST_PATTERNS) };
}

async function mongoSlowOperations(stores: Stores): Promise<{ level: number | null; slow: SlowOperation[] }> {
  const { db } = stores.mongo;
  let level: number;
  try {
    level = Number((await db.command({ profile: -1 })).was);
  } catch {
    return { level: null, slow: [] };
  }
  if (level === 0) return { level, slow: [] };
  const entries = await db
    .collection<{ op: string; ns: string; millis: number; ts?: Date }>("system.profile")
    .find({ millis: { $gt: SLOW_MILLIS } }, { sort: { ts: -1 }, limit: SLOW_OPERATIONS })
    .toArray();
  return { level, slow: entries.map((e) => ({ op: e.op, namespace: e.ns, millis: e.millis, at: e.ts ?? null })) };
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

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

export interface RedisKeySize {
  db: number;
  key: string;
  bytes: number;
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
  const sizes: RedisKeySize[] = [];
  for (const purpose of purposes) {
    const redis = stores.redis[purpose];
    let cursor = "0";
    let seen = 0;
    do {
      const [next, keys] = await redis.scan(cursor, "COUNT", 200);
      cursor = next;
      for (const key of keys.slice(0, KEYS_SAMPLED_PER_DB - seen)) {
        sizes.push({ db: config.redis.db[purpose], key, bytes: Number(await redis.memory("USAGE", key)) || 0 });
      }
      seen += keys.length;
    } while (cursor !== "0" && seen < KEYS_SAMPLED_PER_DB);
  }
  sizes.sort((a, b) => b.bytes - a.bytes || a.key.localeCompare(b.key));
  return { used, databases, largest: sizes.slice(0, LARGEST_KEYS) };
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
    largestRedisKeys: redis.largest,
    mongoProfilingLevel: mongo.level,
    mongoSlowOperations: mongo.slow,
  };
}

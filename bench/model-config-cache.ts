// bench/model-config-cache: does a Redis cache in front of `model_config` pay for itself? One run
// measures, side by side and interleaved, what a read of one user's model config costs straight
// from Mongo (findOne on the unique `username` index) and from Redis (one GET, and the two GETs
// plus JSON.parse that a versioned cache entry needs), what a miss costs (both GETs, the findOne and
// the SET that refills the entry), and, for scale, a whole `me { modelConfig }` request over HTTP.
// Prints `name: value` lines.
import { Redis } from "ioredis";
import { mongoCollections } from "../src/stores/mongo.js";
import { defaultSettings, layraId } from "../dev/layra-writer.js";
import { startGateway } from "../test/helpers.js";
import { LocalStack } from "../dev/stack/stack.js";
import { percentile } from "./stats.js";

const ROUNDS = Number(process.env.ROUNDS ?? 2000);
const MODELS = 5;
const USER = "cachebench";

const stack = await LocalStack.start({ only: ["mongo", "redis"] });
const gateway = await startGateway(stack.env);
const { modelConfig } = mongoCollections(gateway.app.stores.mongo.db);
// Auto-pipelined like the gateway's own connections, on the cache database such a cache would use.
const redis = new Redis(gateway.config.redis.url, { db: gateway.config.redis.db.cache, enableAutoPipelining: true });
const valueKey = `bench:model_config:${USER}:v1`;
const versionKey = `bench:model_config:${USER}:version`;
const missKey = `bench:model_config:${USER}:filled`;
try {
  await gateway.app.indexesReady; // Mongo is connected
  const models = Array.from({ length: MODELS }, (_, i) => ({
    model_id: layraId(USER),
    ...defaultSettings(),
    model_name: `model ${i}`,
  }));
  await modelConfig.insertOne({ username: USER, selected_model: models[0]!.model_id, models });
  const doc = await modelConfig.findOne({ username: USER }, { projection: { _id: 0 } });
  await redis.set(versionKey, "1", "EX", 600);
  await redis.set(valueKey, JSON.stringify(doc), "EX", 600);
  const token = await gateway.token(USER);
  const query = "{ me { modelConfig { selectedModelId models { modelId modelName temperature } } } }";

  const ways = {
    mongo_findone: () => modelConfig.findOne({ username: USER }, { projection: { _id: 0 } }),
    redis_get: () => redis.get(valueKey),
    redis_versioned_read: async () => {
      const version = await redis.get(versionKey);
      return JSON.parse((await redis.get(`bench:model_config:${USER}:v${version}`))!) as unknown;
    },
    // A miss: both GETs find nothing, the value comes from Mongo and is written back (SET EX).
    cache_miss: async () => {
      const version = await redis.get(versionKey);
      await redis.get(`bench:model_config:${USER}:missing${version}`);
      const value = await modelConfig.findOne({ username: USER }, { projection: { _id: 0 } });
      await redis.set(missKey, JSON.stringify(value), "EX", 600);
      return value;
    },
  };
  const samples: Record<string, number[]> = Object.fromEntries(
    [...Object.keys(ways), "http"].map((name) => [name, []]),
  );
  // Warm-up, then interleaved rounds so every way sees the same machine load.
  for (const way of Object.values(ways)) for (let i = 0; i < 50; i++) await way();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, way] of Object.entries(ways)) {
      const started = performance.now();
      await way();
      samples[name]!.push(performance.now() - started);
    }
    if (round % 10 === 0) {
      const started = performance.now();
      const result = await gateway.query(query, { token });
      if (result.errors) throw new Error(JSON.stringify(result.errors));
      samples.http!.push(performance.now() - started);
    }
  }
  const us = (value: number) => (value * 1000).toFixed(0);
  console.log(`rounds: ${ROUNDS}`);
  for (const name of Object.keys(ways)) {
    console.log(`${name}_p50_us: ${us(percentile(samples[name]!, 50))}`);
    console.log(`${name}_p95_us: ${us(percentile(samples[name]!, 95))}`);
  }
  const p50 = (name: string) => percentile(samples[name]!, 50);
  const savedPerHit = p50("mongo_findone") - p50("redis_versioned_read");
  const lostPerMiss = p50("cache_miss") - p50("mongo_findone");
  console.log(`saved_per_hit_p50_us: ${us(savedPerHit)}`);
  console.log(`lost_per_miss_p50_us: ${us(lostPerMiss)}`);
  // The share of reads that must hit for the cache to break even: h * saved = (1 - h) * lost.
  console.log(`break_even_hit_ratio: ${(lostPerMiss / (savedPerHit + lostPerMiss)).toFixed(2)}`);
  console.log(`http_me_modelconfig_p50_us: ${us(percentile(samples.http!, 50))}`);
} finally {
  await redis.del(valueKey, versionKey, missKey);
  redis.disconnect();
  await gateway.close();
  await stack.close();
}

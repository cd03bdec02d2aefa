// Boots the gateway with buildApp() on a random port against real local servers, the way
// graphql-yoga's examples test themselves, and drives it over real HTTP.
import { setTimeout as sleep } from "node:timers/promises";
import { randomBytes } from "node:crypto";
import { after, before } from "node:test";
import { Redis } from "ioredis";
import { buildApp, type App, type AppOptions } from "../src/app.js";
import { loadConfig, type Config } from "../src/config.js";
import { mintToken } from "../src/resolvers/auth.js";
import type { Metrics } from "../src/observability/metrics.js";
import type { RedisPurpose } from "../src/stores/redis.js";
import { createStores, type Stores } from "../src/stores/index.js";
import { mongoCollections } from "../src/stores/mongo.js";
import { LocalStack, type StoreServer } from "../dev/stack/stack.js";

export const TEST_SECRET = "test-secret-key";

/** The stack `npm test` started (LAYRA_TEST_STACK), or a private one for a file run on its own. */
export async function sharedStackEnv(): Promise<{ env: Record<string, string>; close(): Promise<void> }> {
  if (process.env.LAYRA_TEST_STACK) return { env: JSON.parse(process.env.LAYRA_TEST_STACK), close: async () => {} };
  const stack = await LocalStack.start();
  return { env: stack.env, close: () => stack.close() };
}

/** A stack of this test's own, for tests that stop and start servers. */
export function privateStack(only?: readonly StoreServer[]): Promise<LocalStack> {
  return LocalStack.start(only ? { only } : {});
}

/** Waits for a condition, not for a time; the guard only keeps a broken test from hanging. */
export async function eventually(
  check: () => Promise<boolean> | boolean,
  what: string,
  guardMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + guardMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await sleep(50);
  }
}

export const uniqueName = (prefix: string) => `${prefix}${randomBytes(4).toString("hex")}`;

export function testConfig(env: Record<string, string>, overrides: Record<string, string> = {}): Config {
  return loadConfig({
    NODE_ENV: "test",
    HOST: "127.0.0.1",
    PORT: "0",
    SECRET_KEY: TEST_SECRET,
    STORE_TIMEOUT_MS: "2000",
    MONGODB_MIN_POOL_SIZE: "0",
    // Every test file gets its own database and bucket on the shared servers.
    MONGODB_DB: uniqueName("t_"),
    MINIO_BUCKET_NAME: uniqueName("t-"),
    // Rate-limit counters are per gateway unless a test shares a namespace on purpose, and high
    // enough that only test/rate-limit.test.ts (which sets its own) ever meets them.
    RATE_LIMIT_NAMESPACE: uniqueName("t"),
    RATE_LIMIT_POINTS: "100000",
    RATE_LIMIT_ANONYMOUS_POINTS: "100000",
    // Every health probe fresh, so a store stopped by a test shows at once (test/health.test.ts covers the cache).
    READINESS_CACHE_MS: "0",
    ...env,
    ...overrides,
  });
}

export interface TestGateway {
  app: App;
  url: string;
  config: Config;
  token(username: string, ttlSeconds?: number): Promise<string>;
  query<T = Record<string, unknown>>(
    query: string,
    options?: { variables?: Record<string, unknown>; token?: string },
  ): Promise<GraphQLResponse<T>>;
  close(): Promise<void>;
}

export interface GraphQLResponse<T> {
  status: number;
  data?: T | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
  extensions?: Record<string, unknown>;
}

/** How long startGateway waits for the gateway's first Mongo connection. */
const MONGO_START_PATIENCE_MS = 60_000;

export async function startGateway(
  env: Record<string, string>,
  overrides: Record<string, string> = {},
  options: AppOptions = {},
): Promise<TestGateway> {
  const gateway = await startGatewayWithoutMongo(env, overrides, options);
  // Tests write through the stores as soon as this returns; on a busy machine the first Mongo
  // handshake can outlast the store timeout, and a write sent meanwhile meets a closed topology.
  // Bounded, so a gateway whose Mongo never answers fails its test instead of hanging the file.
  await Promise.race([
    gateway.app.indexesReady,
    sleep(MONGO_START_PATIENCE_MS, undefined, { ref: false }).then(() => {
      throw new Error(`Mongo did not answer within ${MONGO_START_PATIENCE_MS} ms of the gateway's start`);
    }),
  ]);
  return gateway;
}

/**
 * Stores for a test that writes through them at once: like startGateway, waits (bounded) until Mongo
 * has answered, since a write sent during a slow first handshake meets a closed topology.
 */
export async function connectedStores(config: Config): Promise<Stores> {
  const stores = createStores(config);
  await eventually(async () => (await stores.mongo.health()).up, "Mongo answers", MONGO_START_PATIENCE_MS);
  return stores;
}

/** startGateway without waiting for Mongo: for tests of a gateway whose Mongo is down at start. */
export async function startGatewayWithoutMongo(
  env: Record<string, string>,
  overrides: Record<string, string> = {},
  options: AppOptions = {},
): Promise<TestGateway> {
  const config = testConfig(env, overrides);
  const app = buildApp(config, undefined, options);
  await app.stores.s3.ensureBucket().catch(() => undefined);
  const url = await app.start();
  const shared = sharingStores(app);
  return {
    app,
    url,
    config,
    token: async (username, ttlSeconds = 3600) => {
      const jwt = await mintToken(config, app.stores, username, ttlSeconds);
      shared.minted.push(jwt);
      return jwt;
    },
    query: async (query, options = {}) => {
      const response = await fetch(`${url}/graphql`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        },
        body: JSON.stringify({ query, variables: options.variables }),
      });
      return { status: response.status, ...((await response.json()) as object) };
    },
    close: async () => {
      shared.closeRequested = true;
      await app.stop();
    },
  };
}

/** The running test gateways on each database and bucket, the tokens they minted, and whether one was closed. */
const onStores = new Map<string, { open: Set<App>; minted: string[]; closeRequested: boolean }>();

/**
 * Registers a started gateway with the others on its database and bucket. When the last of them stops, and
 * one was closed with close() (a gateway only stopped borrowed them), what they wrote is removed.
 */
function sharingStores(app: App) {
  const key = `${app.config.mongo.database}/${app.config.s3.bucket}`;
  const entry = onStores.get(key) ?? { open: new Set<App>(), minted: [], closeRequested: false };
  onStores.set(key, entry);
  entry.open.add(app);
  // Wrapped, since tests stop a gateway that shares another's stores with app.stop() directly.
  const stop = app.stop;
  app.stop = async () => {
    if (entry.open.delete(app) && entry.open.size === 0) {
      onStores.delete(key);
      if (entry.closeRequested) await removeWhatItWrote(app, entry.minted);
    }
    await stop();
  };
  return entry;
}

/**
 * What the gateways on a database and bucket leave on the shared servers once the last stops: nothing of
 * them. Each store is cleaned on its own and a failure is ignored, since a test may have stopped the server.
 */
async function removeWhatItWrote(app: App, minted: readonly string[]): Promise<void> {
  const { mongo, milvus, s3, redis } = app.stores;
  const ignore = () => undefined;
  const knowledgeBaseIds = await mongoCollections(mongo.db)
    .knowledgeBases.distinct("knowledge_base_id")
    .catch((): string[] => []);
  const objectKeys: string[] = [];
  const listed = (async () => {
    for await (const item of s3.client.listObjectsV2(s3.bucket, "", true)) objectKeys.push(String(item.name));
  })();
  // One try per command: a Redis the test stopped fails the cleanup at once instead of retrying for seconds.
  const cleaner = (purpose: RedisPurpose) =>
    new Redis(app.config.redis.url, {
      db: app.config.redis.db[purpose],
      password: app.config.redis.password,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
  const tasks = cleaner("task");
  const cache = cleaner("cache");
  try {
    await Promise.all([
      Promise.all(knowledgeBaseIds.map((id) => milvus.dropCollection(id))).catch(ignore),
      listed
        .then(() => s3.removeObjects(objectKeys))
        .then(() => s3.client.removeBucket(s3.bucket))
        .catch(ignore),
      Promise.all(minted.map((jwt) => redis.tokens.revoke(jwt))).catch(ignore),
      deleteMatching(cache, `ratelimit:${app.config.rateLimit.namespace}:*`).catch(ignore),
      // The bucket's sweep index and the uploads it still lists (a committed upload's record is gone already).
      (async () => {
        const uploadIds = await tasks.hkeys(`upload_sweep:${s3.bucket}:objects`);
        if (uploadIds.length > 0) await tasks.del(...uploadIds.map((id) => `upload:${id}`));
        await deleteMatching(tasks, `upload_sweep:${s3.bucket}:*`);
      })().catch(ignore),
    ]);
    await mongo.db.dropDatabase().catch(ignore);
  } finally {
    tasks.disconnect();
    cache.disconnect();
  }
}

async function deleteMatching(redis: Redis, pattern: string): Promise<void> {
  for await (const keys of redis.scanStream({ match: pattern, count: 1000 }) as AsyncIterable<string[]>)
    if (keys.length > 0) await redis.del(...keys);
}

/**
 * A gateway on the shared stack for the whole test file: started before its first test and
 * closed after its last. Read `.gateway` and `.env` inside tests; another `before` hook of the
 * file awaits `.ready` (node's root-level hooks do not wait for one another).
 */
export function gatewayForFile(overrides: Record<string, string> = {}) {
  let started!: (gateway: TestGateway) => void;
  const state = { ready: new Promise<TestGateway>((resolve) => (started = resolve)) } as {
    gateway: TestGateway;
    env: Record<string, string>;
    ready: Promise<TestGateway>;
  };
  let shared: Awaited<ReturnType<typeof sharedStackEnv>>;
  before(async () => {
    shared = await sharedStackEnv();
    state.env = shared.env;
    state.gateway = await startGateway(shared.env, overrides);
    started(state.gateway);
  });
  after(async () => {
    await state.gateway.close();
    await shared.close();
  });
  return state;
}

/** Gateways started during a test file, each with its own settings; all closed after its last test. */
export function gatewaysForFile(): (overrides?: Record<string, string>) => Promise<TestGateway> {
  let shared: Awaited<ReturnType<typeof sharedStackEnv>>;
  const started: TestGateway[] = [];
  before(async () => {
    shared = await sharedStackEnv();
  });
  after(async () => {
    await Promise.all(started.map((gateway) => gateway.close()));
    await shared.close();
  });
  return async (overrides = {}) => {
    const gateway = await startGateway(shared.env, overrides);
    started.push(gateway);
    return gateway;
  };
}

/** How often each store operation ran (`store_call_duration_seconds` counts), keyed `{store} {operation}`. */
export async function storeCallCounts(metrics: Metrics): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const value of (await metrics.storeCalls.get()).values) {
    if (value.metricName !== "store_call_duration_seconds_count") continue;
    const key = `${value.labels.store} ${value.labels.operation}`;
    counts.set(key, (counts.get(key) ?? 0) + value.value);
  }
  return counts;
}

/** The calls made to one store, all operations and outcomes together. */
export const callsTo = (counts: Map<string, number>, store: string) =>
  [...counts].filter(([key]) => key.startsWith(`${store} `)).reduce((sum, [, count]) => sum + count, 0);

/**
 * A raw client on the Redis database `config` gives `purpose`, for writing the way LAYRA does and reading
 * what the gateway wrote (the store keeps its connections private). Disconnect it when the file or test ends.
 */
export const redisClient = (config: Config, purpose: RedisPurpose) =>
  new Redis(config.redis.url, { db: config.redis.db[purpose], password: config.redis.password });

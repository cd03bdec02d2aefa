import { Redis } from "ioredis";
import type { Config } from "../config.js";
import { probe, type StoreHealth } from "./health.js";
import { withTimeout } from "./timeout.js";

/** LAYRA's four logical Redis databases: tokens, task progress, locks, cache. */
export interface RedisStore {
  token: Redis;
  task: Redis;
  lock: Redis;
  cache: Redis;
  /** A new connection to `db`, for blocking or subscribing clients that cannot share one. */
  connect(db: number): Redis;
  health(): Promise<StoreHealth>;
  close(): Promise<void>;
}

export function createRedisStore(config: Config): RedisStore {
  const opened: Redis[] = [];
  const connect = (db: number): Redis => {
    const client = new Redis(config.redis.url, {
      db,
      password: config.redis.password,
      connectTimeout: config.storeTimeoutMs,
      commandTimeout: config.storeTimeoutMs,
      // Fail a command once instead of queueing retries forever; ioredis keeps reconnecting.
      maxRetriesPerRequest: 1,
      retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
    });
    client.on("error", () => {
      // Connection errors surface through the failing commands and the health probe.
    });
    opened.push(client);
    return client;
  };
  const { token, task, lock, cache } = config.redis.db;
  const store = { token: connect(token), task: connect(task), lock: connect(lock), cache: connect(cache) };
  return {
    ...store,
    connect,
    health: () =>
      probe("redis", () =>
        withTimeout("redis", config.storeTimeoutMs, Promise.all(Object.values(store).map((c) => c.ping()))),
      ),
    close: async () => {
      await Promise.all(opened.map((client) => client.quit().catch(() => client.disconnect())));
    },
  };
}

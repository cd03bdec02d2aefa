import { Redis } from "ioredis";
import type { Config } from "../config.js";
import { probe, type StoreHealth } from "./health.js";
import { ANSWER_READ_BLOCK_MS, answerStreams, type AnswerStreams } from "./answer-streams.js";
import { redisLocks, type RedisLocks } from "./lock.js";
import { observeStoreCall } from "./observe.js";
import { pendingUploads, type PendingUploads } from "./pending-uploads.js";
import { rateLimitCounters, type RateLimitCounters } from "./rate-limits.js";
import { ingestAttempts, taskHashes, type IngestAttempts, type TaskHashes } from "./task-hashes.js";
import { progressKeys, type ProgressKeys } from "./progress-keys.js";
import { tokenRegistry, type TokenRegistry } from "./tokens.js";
import { withTimeout } from "./timeout.js";
import { workflowRuns, type WorkflowRuns } from "./workflow-runs.js";

export type RedisPurpose = "token" | "task" | "lock" | "cache";

/** LAYRA's four logical Redis databases: tokens, task progress, locks, cache. */
export interface RedisStore {
  /** Bearer tokens as LAYRA registers them (DB 0). */
  tokens: TokenRegistry;
  /** LAYRA's task hashes `task:{id}` (task database). */
  tasks: TaskHashes;
  /** The ingestion workers' marks of a file being written (lock database). */
  ingestAttempts: IngestAttempts;
  /** Owner-token locks `lock:{kind}:{id}` (lock database). */
  locks: RedisLocks;
  /** Presigned uploads of the gateway's bucket waiting for their commit, and their sweep index (task database). */
  pendingUploads: PendingUploads;
  /** The rate limit's per-subject counters (cache database). */
  rateLimits: RateLimitCounters;
  /** LAYRA's progress hashes and streams (DB 1) and their keyspace notifications. */
  progressKeys: ProgressKeys;
  /** LAYRA's workflow run keys as its execute and cancel endpoints write them (task database). */
  workflowRuns: WorkflowRuns;
  /** Answers' event streams, stop flags and per-user counts (docs/ask.md). */
  answers: AnswerStreams;
  /** The server's INFO text (memory and keyspace), for operators. */
  info(): Promise<string>;
  /** Up to `limit` keys of one database with their memory usage in bytes, for operators. */
  sampleKeySizes(purpose: RedisPurpose, limit: number): Promise<{ key: string; bytes: number }[]>;
  health(): Promise<StoreHealth>;
  close(): Promise<void>;
}

export function createRedisStore(config: Config): RedisStore {
  const opened: Redis[] = [];
  const open = (db: number, autoPipelining: boolean): Redis => {
    const client = new Redis(config.redis.url, {
      db,
      // The shared connections send every command issued in one tick (a request's token check and
      // rate-limit count, other requests' too) in one write: per-command socket writes were the
      // largest cost of a small authenticated request. Not for blocking or subscribing connections.
      enableAutoPipelining: autoPipelining,
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
  const connect = (db: number) => open(db, false);
  const shared = (db: number) => open(db, true);
  const { token, task, lock, cache } = config.redis.db;
  const store = { token: shared(token), task: shared(task), lock: shared(lock), cache: shared(cache) };
  return {
    tokens: tokenRegistry(store.token),
    tasks: taskHashes(store.task),
    ingestAttempts: ingestAttempts(store.lock),
    locks: redisLocks(store.lock, config.lockTtlMs),
    pendingUploads: pendingUploads(store.task, config.s3.bucket),
    rateLimits: rateLimitCounters(store.cache),
    progressKeys: progressKeys(store.task, () => connect(task), task),
    workflowRuns: workflowRuns(store.task),
    // Followers' blocking connections are their own to close (when their subscription ends), so not in `opened`;
    // a blocking read may take its whole block before the store timeout starts to count.
    answers: answerStreams(store.task, store.cache, () =>
      store.task.duplicate({
        enableAutoPipelining: false,
        commandTimeout: config.storeTimeoutMs + ANSWER_READ_BLOCK_MS,
      }),
    ),
    info: () => observeStoreCall("redis", () => store.cache.info(), "info"),
    sampleKeySizes: async (purpose, limit) => {
      const redis = store[purpose];
      const sizes: { key: string; bytes: number }[] = [];
      let cursor = "0";
      do {
        const [next, keys] = await observeStoreCall("redis", () => redis.scan(cursor, "COUNT", 200), `${purpose}.scan`);
        cursor = next;
        for (const key of keys.slice(0, limit - sizes.length)) {
          const bytes = await observeStoreCall("redis", () => redis.memory("USAGE", key), `${purpose}.memoryUsage`);
          sizes.push({ key, bytes: Number(bytes) || 0 });
        }
      } while (cursor !== "0" && sizes.length < limit);
      return sizes;
    },
    health: () =>
      probe("redis", () =>
        withTimeout("redis", config.storeTimeoutMs, Promise.all(Object.values(store).map((c) => c.ping()))),
      ),
    close: async () => {
      await Promise.all(opened.map((client) => client.quit().catch(() => client.disconnect())));
    },
  };
}

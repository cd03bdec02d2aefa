// The Redis side of ingestion: LAYRA's task hash `task:{id}` (task database) and the workers' attempt
// marks (lock database); pending presigned uploads are in ./pending-uploads.ts.
import type { Redis } from "ioredis";
import { observeStoreCall } from "./observe.js";

const taskKey = (taskId: string) => `task:${taskId}`;

// Writes only into a hash that exists: an expired or foreign task is not recreated without its total.
const HSET_IF_EXISTS = `if redis.call("EXISTS", KEYS[1]) == 1 then redis.call("HSET", KEYS[1], unpack(ARGV)) return 1 end return 0`;

// HSET_IF_EXISTS, then keeps the hash at least ARGV[1] seconds from now (never shortens it, never adds an expiry).
const HSET_AND_EXTEND = `if redis.call("EXISTS", KEYS[1]) == 0 then return 0 end
redis.call("HSET", KEYS[1], unpack(ARGV, 2))
local ttl = redis.call("TTL", KEYS[1])
if ttl >= 0 and ttl < tonumber(ARGV[1]) then redis.call("EXPIRE", KEYS[1], ARGV[1]) end
return 1`;

/**
 * Records one file's outcome once (a redelivered file counts once: field `file:{file_id}`), then,
 * when every file has an outcome, ends the task: `completed` with LAYRA's text, or `failed` with a
 * message naming every failed file. Until then a failure leaves the status `processing`, so a
 * reader does not stop following a task whose other files are still running.
 */
const FINISH_FILE = `
local key = KEYS[1]
if redis.call("EXISTS", key) == 0 then return -1 end
local mark = "file:" .. ARGV[1]
if redis.call("HEXISTS", key, mark) == 1 then return 0 end
redis.call("HSET", key, mark, ARGV[2])
if ARGV[2] == "ok" then
  redis.call("HINCRBY", key, "processed", 1)
else
  redis.call("HINCRBY", key, "failed", 1)
  local failures = cjson.decode(redis.call("HGET", key, "failures") or "[]")
  table.insert(failures, ARGV[3])
  local names = cjson.decode(redis.call("HGET", key, "failed_files") or "[]")
  table.insert(names, ARGV[4])
  redis.call("HSET", key, "failures", cjson.encode(failures), "failed_files", cjson.encode(names))
  redis.call("HSET", key, "message", ARGV[5] .. ARGV[3])
end
local processed = tonumber(redis.call("HGET", key, "processed") or "0")
local failed = tonumber(redis.call("HGET", key, "failed") or "0")
local total = tonumber(redis.call("HGET", key, "total") or "0")
if processed + failed >= total then
  if failed == 0 then
    redis.call("HSET", key, "status", "completed", "message", ARGV[6])
  else
    local failures = cjson.decode(redis.call("HGET", key, "failures"))
    redis.call("HSET", key, "status", "failed", "message", ARGV[5] .. table.concat(failures, "; "))
  end
end
if redis.call("TTL", key) == -1 then redis.call("EXPIRE", key, ARGV[7]) end
return 1`;

/** LAYRA's task hashes, in the task database. */
export function taskHashes(redis: Redis) {
  return {
    /** LAYRA's four fields, then EXPIRE: what its upload endpoints write before producing the messages. */
    init: (taskId: string, total: number, message: string, ttlSeconds: number) =>
      observeStoreCall(
        "redis",
        async () => {
          await redis
            .multi()
            .hset(taskKey(taskId), { status: "processing", total: String(total), processed: "0", message })
            .expire(taskKey(taskId), ttlSeconds)
            .exec();
        },
        "task.init",
      ),
    delete: (taskId: string) => observeStoreCall("redis", () => redis.del(taskKey(taskId)), "task.delete"),
    /** Sets fields of an existing task hash (LAYRA's `update_task_progress` and the page-level fields). */
    update: (taskId: string, fields: Record<string, string | number>) =>
      observeStoreCall(
        "redis",
        () => redis.eval(HSET_IF_EXISTS, 1, taskKey(taskId), ...Object.entries(fields).flat().map(String)),
        "task.update",
      ),
    /**
     * Like `update`, for a worker's page progress: the task then lives at least `ttlSeconds` more, so a
     * long file is not EXPIRED while its pages are still coming (LAYRA's hour counts from the upload).
     */
    progress: (taskId: string, fields: Record<string, string | number>, ttlSeconds: number) =>
      observeStoreCall(
        "redis",
        () => redis.eval(HSET_AND_EXTEND, 1, taskKey(taskId), ttlSeconds, ...Object.entries(fields).flat().map(String)),
        "task.progress",
      ),
    /** Records one file's outcome once and ends the task when every file has one (FINISH_FILE). */
    finishFile: (
      taskId: string,
      outcome: { fileId: string; filename: string; error: string | null },
      texts: { failedPrefix: string; completed: string; ttlSeconds: number },
    ) =>
      observeStoreCall(
        "redis",
        () =>
          redis.eval(
            FINISH_FILE,
            1,
            taskKey(taskId),
            outcome.fileId,
            outcome.error === null ? "ok" : "failed",
            outcome.error === null ? "" : `${outcome.filename}: ${outcome.error}`,
            outcome.filename,
            texts.failedPrefix,
            texts.completed,
            texts.ttlSeconds,
          ),
        "task.finishFile",
      ),
  };
}

export type TaskHashes = ReturnType<typeof taskHashes>;

/** The marks `ingest_attempt:{file_id}` a worker sets while it writes a file, in the lock database. */
export function ingestAttempts(redis: Redis) {
  return {
    /** Marks the start of an attempt; true when an earlier one was interrupted, so its leftovers go first. */
    begin: async (fileId: string, ttlSeconds: number): Promise<boolean> => {
      const previous = await observeStoreCall(
        "redis",
        () => redis.set(`ingest_attempt:${fileId}`, "1", "EX", ttlSeconds, "GET"),
        "attempt.begin",
      );
      return previous !== null;
    },
    end: (fileId: string) => observeStoreCall("redis", () => redis.del(`ingest_attempt:${fileId}`), "attempt.end"),
  };
}

export type IngestAttempts = ReturnType<typeof ingestAttempts>;

// Redis DB 2 locks: `SET key token NX PX ttl`, released only by the holder of the token (a Lua
// compare-and-delete), so a request whose lock expired never deletes someone else's.
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { Conflict, UpstreamUnavailable } from "../errors.js";
import { observeStoreCall } from "./observe.js";

const RELEASE = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`;

const EXTEND = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end`;

export const lockKey = (kind: string, id: string) => `lock:${kind}:${id}`;

/** The owner token when the lock was free, null when someone else holds it. */
export async function acquireLock(redis: Redis, key: string, ttlMs: number): Promise<string | null> {
  const token = randomUUID();
  const reply = await observeStoreCall("redis", () => redis.set(key, token, "PX", ttlMs, "NX"), "lock.acquire");
  return reply === "OK" ? token : null;
}

export async function releaseLock(redis: Redis, key: string, token: string): Promise<boolean> {
  return (await observeStoreCall("redis", () => redis.eval(RELEASE, 1, key, token), "lock.release")) === 1;
}

/** Pushes the expiry of a lock its owner still holds to `ttlMs` from now; false when it is no longer theirs. */
export async function extendLock(redis: Redis, key: string, token: string, ttlMs: number): Promise<boolean> {
  return (await observeStoreCall("redis", () => redis.eval(EXTEND, 1, key, token, ttlMs), "lock.extend")) === 1;
}

/**
 * Runs `work` holding the locks `lock:{kind}:{id}` for every id (taken in sorted order); when
 * another request holds one, this answers CONFLICT at once and changes nothing.
 */
export async function withLocks<T>(
  redis: Redis,
  ttlMs: number,
  kind: string,
  ids: readonly string[],
  work: () => Promise<T>,
): Promise<T> {
  const [id, ...rest] = [...new Set(ids)].sort();
  if (id === undefined) return work();
  const key = lockKey(kind, id);
  let token: string | null;
  try {
    token = await acquireLock(redis, key, ttlMs);
  } catch (error) {
    throw new UpstreamUnavailable("redis", error instanceof Error ? error.message : String(error));
  }
  if (!token)
    throw new Conflict(
      `${kind.replaceAll("_", " ")} ${JSON.stringify(id)} is being changed by another request; try again when it has finished`,
    );
  // Renewed while the work runs, so a slow cascade keeps its lock; a crashed one loses it after LOCK_TTL_MS.
  const renewal = setInterval(() => void extendLock(redis, key, token, ttlMs).catch(() => false), ttlMs / 3);
  renewal.unref();
  try {
    return await withLocks(redis, ttlMs, kind, rest, work);
  } finally {
    clearInterval(renewal);
    // A release that fails leaves the lock to expire after LOCK_TTL_MS.
    await releaseLock(redis, key, token).catch(() => false);
  }
}

/**
 * Runs `work` holding `key`, waiting (polling every `pollMs`) while someone else holds it instead of
 * failing: for background work that must happen, such as the ingestion worker's per-file steps.
 */
export async function withWaitingLock<T>(
  redis: Redis,
  key: string,
  ttlMs: number,
  work: () => Promise<T>,
  pollMs = 200,
): Promise<T> {
  let token = await acquireLock(redis, key, ttlMs);
  while (!token) {
    await new Promise((resolve) => setTimeout(resolve, pollMs));
    token = await acquireLock(redis, key, ttlMs);
  }
  const held = token;
  const renewal = setInterval(() => void extendLock(redis, key, held, ttlMs).catch(() => false), ttlMs / 3);
  renewal.unref();
  try {
    return await work();
  } finally {
    clearInterval(renewal);
    await releaseLock(redis, key, held).catch(() => false);
  }
}

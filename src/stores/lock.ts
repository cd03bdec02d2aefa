// Redis DB 2 locks: `SET key token NX PX ttl`, released only by the holder of the token (a Lua
// compare-and-delete), so a request whose lock expired never deletes someone else's.
import { setTimeout as sleep } from "node:timers/promises";
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { StoreAccess } from "../context.js";
import { Conflict, UpstreamUnavailable, errorMessage } from "../errors.js";
import { observeStoreCall } from "./observe.js";

const RELEASE = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`;

const EXTEND = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end`;

export const lockKey = (kind: string, id: string) => `lock:${kind}:${id}`;

/** Locks in the lock database; `hold` keeps each for `holdTtlMs` (LOCK_TTL_MS) past its last renewal. */
export function redisLocks(redis: Redis, holdTtlMs: number) {
  /** The owner token when the lock was free, null when someone else holds it. */
  const acquire = async (key: string, ttlMs: number): Promise<string | null> => {
    const token = randomUUID();
    const reply = await observeStoreCall("redis", () => redis.set(key, token, "PX", ttlMs, "NX"), "lock.acquire");
    return reply === "OK" ? token : null;
  };
  const release = async (key: string, token: string): Promise<boolean> =>
    (await observeStoreCall("redis", () => redis.eval(RELEASE, 1, key, token), "lock.release")) === 1;
  /** Pushes the expiry of a lock its owner still holds to `ttlMs` from now; false when it is no longer theirs. */
  const extend = async (key: string, token: string, ttlMs: number): Promise<boolean> =>
    (await observeStoreCall("redis", () => redis.eval(EXTEND, 1, key, token, ttlMs), "lock.extend")) === 1;

  /** Runs `work` while the owner of `token` keeps `key`, renewing it, and releases it after. */
  const holding = async <T>(key: string, token: string, ttlMs: number, work: () => Promise<T>): Promise<T> => {
    // Renewed while the work runs, so a slow cascade keeps its lock; a crashed one loses it after `ttlMs`.
    const renewal = setInterval(() => void extend(key, token, ttlMs).catch(() => false), ttlMs / 3);
    renewal.unref();
    try {
      return await work();
    } finally {
      clearInterval(renewal);
      // A release that fails leaves the lock to expire after `ttlMs`.
      await release(key, token).catch(() => false);
    }
  };

  /**
   * Runs `work` holding the locks `lock:{kind}:{id}` for every id (taken in sorted order); when
   * another request holds one, this answers CONFLICT at once and changes nothing.
   */
  const hold = async <T>(kind: string, ids: readonly string[], work: () => Promise<T>): Promise<T> => {
    const [id, ...rest] = [...new Set(ids)].sort();
    if (id === undefined) return work();
    const key = lockKey(kind, id);
    let token: string | null;
    try {
      token = await acquire(key, holdTtlMs);
    } catch (error) {
      throw new UpstreamUnavailable("redis", errorMessage(error));
    }
    if (!token)
      throw new Conflict(
        `${kind.replaceAll("_", " ")} ${JSON.stringify(id)} is being changed by another request; try again when it has finished`,
      );
    return holding(key, token, holdTtlMs, () => hold(kind, rest, work));
  };

  /**
   * Runs `work` holding `key`, waiting (polling every `pollMs`) while someone else holds it instead of
   * failing: for background work that must happen, such as the ingestion worker's per-file steps.
   */
  const holdWhenFree = async <T>(key: string, ttlMs: number, work: () => Promise<T>, pollMs = 200): Promise<T> => {
    let token = await acquire(key, ttlMs);
    while (!token) {
      await sleep(pollMs);
      token = await acquire(key, ttlMs);
    }
    return holding(key, token, ttlMs, work);
  };

  return { acquire, release, extend, hold, holdWhenFree };
}

export type RedisLocks = ReturnType<typeof redisLocks>;

/**
 * Runs `work` holding the lock of every knowledge base in `ids` (CONFLICT when one is taken). Every
 * write that adds or removes a reference to a knowledge base (its delete cascade, a `base_used`
 * list) runs under it, so a delete can never interleave with a write that names the base.
 */
export const withKnowledgeBaseLocks = <T>(access: StoreAccess, ids: readonly string[], work: () => Promise<T>) =>
  access.stores.redis.locks.hold("knowledge_base", ids, work);

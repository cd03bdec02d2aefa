// Fixed-window counters of the rate limit (src/plugins/rate-limit.ts), in the cache database.
import type { Redis } from "ioredis";
import { observeStoreCall } from "./observe.js";

// Counts one hit; the first of a window sets the window as the key's expiry. Answers {count, ms left}.
const HIT = `
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
`;

// Takes back one hit, only while the window that counted it may still be running (never below 0).
const GIVE_BACK = `
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then return redis.call('DECR', KEYS[1]) end
return 0
`;

type CountingRedis = Redis & {
  rateLimitHit(key: string, windowMs: number): Promise<[number, number]>;
  rateLimitGiveBack(key: string): Promise<number>;
};

export function rateLimitCounters(redis: Redis) {
  // Sent once, then called by its hash (ioredis defineCommand).
  redis.defineCommand("rateLimitHit", { numberOfKeys: 1, lua: HIT });
  redis.defineCommand("rateLimitGiveBack", { numberOfKeys: 1, lua: GIVE_BACK });
  const counting = redis as CountingRedis;
  return {
    /** Counts one hit of `key` in its window of `windowMs`; answers the count and the milliseconds left. */
    hit: (key: string, windowMs: number) =>
      observeStoreCall("redis", () => counting.rateLimitHit(key, windowMs), "rate_limit.hit"),
    /** Takes back one hit of `key` (an operation counted for the wrong subject). */
    giveBack: (key: string) => observeStoreCall("redis", () => counting.rateLimitGiveBack(key), "rate_limit.give_back"),
    /** The count of `key` and its milliseconds left, without counting (0 and a negative time when absent). */
    read: (key: string) =>
      observeStoreCall(
        "redis",
        async () => {
          const [count, ttl] = await Promise.all([redis.get(key), redis.pttl(key)]);
          return [Number(count ?? 0), ttl] as const;
        },
        "rate_limit.read",
      ),
  };
}

export type RateLimitCounters = ReturnType<typeof rateLimitCounters>;

// A read-through JSON cache in Redis DB 3 with versioned keys. Invalidation bumps the version, so
// a reader that loaded the old value before a write can only fill the old version's key, which no
// later reader asks for: nothing stale is served after an invalidation returns.
import type { Redis } from "ioredis";
import { observeStoreCall } from "./observe.js";

export interface VersionedCache<T> {
  read(id: string, load: () => Promise<T>): Promise<T>;
  invalidate(id: string): Promise<void>;
  /** The keys of one entry, for tests and operators: `{namespace}:{id}:version` and `{namespace}:{id}:v{n}`. */
  keys(id: string): Promise<{ version: string; value: string }>;
}

export function versionedCache<T>(redis: Redis, namespace: string, ttlSeconds: number): VersionedCache<T> {
  const versionKey = (id: string) => `${namespace}:${id}:version`;
  const valueKey = (id: string, version: string | null) => `${namespace}:${id}:v${version ?? "0"}`;
  return {
    read: async (id, load) => {
      let version: string | null;
      try {
        version = await observeStoreCall("redis", () => redis.get(versionKey(id)), "cache.version");
        const cached = await observeStoreCall("redis", () => redis.get(valueKey(id, version)), "cache.get");
        if (cached !== null) return JSON.parse(cached) as T;
      } catch {
        // The cache is an optimisation: with Redis down the value comes from its source.
        return load();
      }
      const value = await load();
      await observeStoreCall(
        "redis",
        () => redis.set(valueKey(id, version), JSON.stringify(value), "EX", ttlSeconds),
        "cache.set",
      ).catch(() => undefined);
      return value;
    },
    invalidate: async (id) => {
      await observeStoreCall(
        "redis",
        async () => {
          const previous = await redis.get(versionKey(id));
          await redis.multi().incr(versionKey(id)).del(valueKey(id, previous)).exec();
        },
        "cache.invalidate",
      );
    },
    keys: async (id) => {
      const version = await redis.get(versionKey(id));
      return { version: versionKey(id), value: valueKey(id, version) };
    },
  };
}

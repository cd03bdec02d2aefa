// LAYRA's token registry in Redis DB 0: `token:{jwt}` holds the username while the token is valid,
// and `user:{username}` the user's latest token, both expiring with the token.
import type { Redis } from "ioredis";
import { observeStoreCall } from "./observe.js";

const tokenKey = (jwt: string) => `token:${jwt}`;

export function tokenRegistry(redis: Redis) {
  return {
    /** Whether the token is registered (not expired, not revoked). */
    isRegistered: (jwt: string) =>
      observeStoreCall("redis", () => redis.exists(tokenKey(jwt)), "token.exists").then((found) => found === 1),
    register: (jwt: string, username: string, ttlSeconds: number) =>
      observeStoreCall(
        "redis",
        () =>
          redis
            .multi()
            .set(tokenKey(jwt), username, "EX", ttlSeconds)
            .set(`user:${username}`, jwt, "EX", ttlSeconds)
            .exec(),
        "token.register",
      ).then(() => undefined),
    /** True when the token was registered. */
    revoke: (jwt: string) =>
      observeStoreCall("redis", () => redis.del(tokenKey(jwt)), "token.revoke").then((deleted) => deleted === 1),
  };
}

export type TokenRegistry = ReturnType<typeof tokenRegistry>;

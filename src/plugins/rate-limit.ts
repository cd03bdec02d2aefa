// Per-user rate limiting kept in Redis (the cache database), so every replica that shares that
// Redis shares the count. A fixed window per subject: the first operation creates
// `ratelimit:{namespace}:{user:NAME | ip:ADDRESS}` with the window as its expiry, each operation
// increments it (one Lua script, atomic), and operations past the limit are refused with
// RATE_LIMITED (HTTP 429 with Retry-After; over graphql-ws the error carries retryAfterSeconds).
// Signed-in callers are counted by username, anonymous ones by client address. The count is sent
// by the context factory beside the token check (`startRateLimit`), so that one Redis round trip
// serves both; a token with a good signature counts for its subject even if it turns out revoked.
// The script is sent once and then called by its hash (ioredis defineCommand). If Redis cannot be
// reached the operation runs (fail open) and a warning is logged: the limit protects capacity,
// it is not an access control.
import type { IncomingMessage } from "node:http";
import type { Redis } from "ioredis";
import { observeStoreCall } from "../stores/observe.js";
import type { Plugin } from "graphql-yoga";
import type { Config } from "../config.js";
import type { Context } from "../context.js";
import { RateLimited } from "../errors.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";

const SCRIPT = `
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
`;

export interface RateLimitDecision {
  allowed: boolean;
  count: number;
  limit: number;
  retryAfterMs: number;
  subject: "user" | "ip";
}

type ScriptedRedis = Redis & {
  rateLimitHit(key: string, windowMs: number): Promise<[number, number]>;
};

/** The count started for one operation, awaited by the plugin before it executes. */
export interface RateLimitCount {
  subject: "user" | "ip";
  id: string;
  decision: Promise<RateLimitDecision | null>;
}

export class RateLimiter {
  private readonly redis: ScriptedRedis;

  constructor(
    redis: Redis,
    private readonly options: Config["rateLimit"],
  ) {
    redis.defineCommand("rateLimitHit", { numberOfKeys: 1, lua: SCRIPT });
    this.redis = redis as ScriptedRedis;
  }

  /** Starts counting one operation of a signed-in user (by name) or an anonymous caller (by address). */
  start(username: string | null, req: IncomingMessage | undefined): RateLimitCount {
    const [subject, id] =
      username !== null
        ? (["user", username] as const)
        : (["ip", clientAddress(req, this.options.trustProxy)] as const);
    const decision = this.hit(subject, id);
    // Awaited (and its failure handled) by the plugin; this only keeps an unawaited one quiet.
    decision.catch(() => undefined);
    return { subject, id, decision };
  }

  key(subject: "user" | "ip", id: string): string {
    return `ratelimit:${this.options.namespace}:${subject}:${id}`;
  }

  /** Counts one operation for the subject; null when the limit for that kind of caller is off. */
  async hit(subject: "user" | "ip", id: string): Promise<RateLimitDecision | null> {
    const limit = subject === "user" ? this.options.points : this.options.anonymousPoints;
    if (limit === 0) return null;
    const [count, ttl] = await observeStoreCall(
      "redis",
      () => this.redis.rateLimitHit(this.key(subject, id), this.options.windowMs),
      "rate_limit.hit",
    );
    return { allowed: count <= limit, count, limit, retryAfterMs: Math.max(0, ttl), subject };
  }
}

/** The caller's address: the socket's, or behind a trusted proxy the last X-Forwarded-For entry. */
export function clientAddress(req: IncomingMessage | undefined, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = req?.headers["x-forwarded-for"];
    const value = Array.isArray(forwarded) ? forwarded.join(",") : forwarded;
    const last = value
      ?.split(",")
      .map((entry) => entry.trim())
      .filter(Boolean)
      .pop();
    if (last) return last;
  }
  return req?.socket?.remoteAddress ?? "unknown";
}

export function useRateLimit(
  limiter: RateLimiter,
  options: Config["rateLimit"],
  logger: Logger,
  metrics: Metrics,
): Plugin<Context> {
  const check = async (context: Context & { req?: IncomingMessage }): Promise<RateLimited | null> => {
    const { subject, decision: counted } =
      context.rateLimit ?? limiter.start(context.viewer?.username ?? null, context.req);
    let decision: RateLimitDecision | null;
    try {
      decision = await counted;
    } catch (error) {
      logger.warn(
        { err: error, requestId: context.requestId },
        "rate limit check failed; the operation runs unlimited",
      );
      return null;
    }
    if (!decision || decision.allowed) return null;
    metrics.rejections.inc({ reason: "rate limit" });
    logger.info(
      { requestId: context.requestId, subject, count: decision.count, limit: decision.limit },
      "rate limited",
    );
    return new RateLimited(subject, decision.count, decision.limit, options.windowMs, decision.retryAfterMs);
  };
  return {
    async onExecute({ args, setResultAndStopExecution }) {
      const error = await check(args.contextValue);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
    async onSubscribe({ args, setResultAndStopExecution }) {
      const error = await check(args.contextValue);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
  };
}

// Per-caller rate limits: a fixed window per user or address in Redis, so replicas share each count,
// failing open when Redis is down (docs/security.md, "Rate limits").
import type { IncomingMessage } from "node:http";
import type { Plugin } from "graphql-yoga";
import type { Config } from "../config.js";
import type { Context } from "../context.js";
import { RateLimited } from "../errors.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import type { RateLimitCounters } from "../stores/rate-limits.js";

/** `invalid`: documents that failed validation, per address, counted apart from operations. */
type Subject = "user" | "ip" | "invalid";

export interface RateLimitDecision {
  allowed: boolean;
  count: number;
  limit: number;
  retryAfterMs: number;
  subject: Subject;
}

/** The count started for one operation, awaited by the plugin before it executes. */
export interface RateLimitCount {
  subject: "user" | "ip";
  id: string;
  decision: Promise<RateLimitDecision | null>;
}

/** Revoked tokens remembered per process, so each costs its user's count at most once (oldest go first). */
const REVOKED_TOKENS_MAX = 10_000;

export class RateLimiter {
  private readonly revokedTokens = new Set<string>();

  constructor(
    private readonly counters: RateLimitCounters,
    private readonly options: Config["rateLimit"],
  ) {}

  /**
   * Starts counting one operation of a signed-in user (by name) or an anonymous caller (by address).
   * A token already known to be revoked counts as anonymous: it must not spend its owner's operations.
   */
  start(username: string | null, req: IncomingMessage | undefined, jwt: string | null = null): RateLimitCount {
    const [subject, id] =
      username !== null && !(jwt !== null && this.revokedTokens.has(jwt))
        ? (["user", username] as const)
        : (["ip", clientAddress(req, this.options.trustProxy)] as const);
    const decision = this.hit(subject, id);
    // Awaited (and its failure handled) by the plugin; this only keeps an unawaited one quiet.
    decision.catch(() => undefined);
    return { subject, id, decision };
  }

  /**
   * The token check's verdict on a count started beside it. A token Redis does not hold (logged out,
   * revoked) counts by address: a count started by user is given back, and the token is remembered so
   * its next operations start by address. A remembered token that is registered again (LAYRA mints
   * the same JWT for a sign-in within the same second) is forgotten and counts by user again.
   */
  settle(count: RateLimitCount, jwt: string, registered: boolean, username: string, req: IncomingMessage | undefined) {
    if (registered) {
      if (!this.revokedTokens.delete(jwt) || count.subject === "user") return count;
      this.giveBack(count);
      return this.start(username, req, jwt);
    }
    if (this.revokedTokens.size >= REVOKED_TOKENS_MAX)
      this.revokedTokens.delete(this.revokedTokens.values().next().value!);
    this.revokedTokens.add(jwt);
    if (count.subject === "ip") return count;
    this.giveBack(count);
    return this.start(null, req);
  }

  private giveBack(count: RateLimitCount): void {
    const key = this.key(count.subject, count.id);
    void count.decision.then((counted) => counted && this.counters.giveBack(key)).catch(() => undefined);
  }

  key(subject: Subject, id: string): string {
    return `ratelimit:${this.options.namespace}:${subject}:${id}`;
  }

  private limitOf(subject: Subject): number {
    return subject === "user" ? this.options.points : this.options.anonymousPoints;
  }

  /** Counts one operation for the subject; null when the limit for that kind of caller is off. */
  async hit(subject: Subject, id: string): Promise<RateLimitDecision | null> {
    const limit = this.limitOf(subject);
    if (limit === 0) return null;
    const [count, ttl] = await this.counters.hit(this.key(subject, id), this.options.windowMs);
    return { allowed: count <= limit, count, limit, retryAfterMs: Math.max(0, ttl), subject };
  }

  /** The subject's state without counting (null when under its limit or the limit is off). */
  async over(subject: Subject, id: string): Promise<RateLimitDecision | null> {
    const limit = this.limitOf(subject);
    if (limit === 0) return null;
    const [count, ttl] = await this.counters.read(this.key(subject, id));
    return count > limit ? { allowed: false, count, limit, retryAfterMs: Math.max(0, ttl), subject } : null;
  }
}

/** The caller's address: the socket's, or behind a trusted proxy the last X-Forwarded-For entry. */
function clientAddress(req: IncomingMessage | undefined, trustProxy: boolean): string {
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
  // Documents that fail validation never reach execution, so they are counted here, per address,
  // and an address past its limit is refused before its next document is even parsed (over HTTP
  // here, over graphql-ws by src/server/websocket.ts through `refuseFlood`).
  const countInvalid = (req: IncomingMessage | undefined) =>
    void limiter.hit("invalid", clientAddress(req, options.trustProxy)).catch(() => undefined);
  return {
    async onRequestParse({ serverContext }) {
      const error = await refuseFlood(limiter, options, (serverContext as { req?: IncomingMessage }).req, logger);
      if (error) throw error;
    },
    onValidate({ context }) {
      return ({ valid }) => {
        if (!valid) countInvalid((context as { req?: IncomingMessage }).req);
      };
    },
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

/** RATE_LIMITED when the caller's address sent more invalid documents than its window allows; fails open. */
export async function refuseFlood(
  limiter: RateLimiter,
  options: Config["rateLimit"],
  req: IncomingMessage | undefined,
  logger: Logger,
): Promise<RateLimited | null> {
  let decision: RateLimitDecision | null;
  try {
    decision = await limiter.over("invalid", clientAddress(req, options.trustProxy));
  } catch (error) {
    logger.warn({ err: error }, "invalid-document rate check failed; the request runs");
    return null;
  }
  return decision
    ? new RateLimited("ip", decision.count, decision.limit, options.windowMs, decision.retryAfterMs)
    : null;
}

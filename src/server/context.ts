// The per-operation context, built for every HTTP, SSE and graphql-ws operation: who is calling
// (the bearer token, checked against Redis), its rate-limit count and its own DataLoaders.
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Config } from "../config.js";
import type { Context } from "../context.js";
import type { Live } from "../live/index.js";
import { createLoaders } from "../loaders/index.js";
import type { RateLimiter } from "../plugins/rate-limit.js";
import { checkRegistered, verifyBearer } from "../resolvers/auth.js";
import type { Stores } from "../stores/index.js";

/** What the HTTP server (`req`) or graphql-ws (`connectionParams`) hands Yoga with each operation. */
export type ServerContext = { req?: IncomingMessage; connectionParams?: Record<string, unknown> };

/** What Yoga passes the context factory: the server context plus the request or graphql-ws params. */
type InitialContext = ServerContext & {
  request?: Request;
  params?: { extensions?: Record<string, unknown> };
  /** Set by the observability plugin when the operation was parsed. */
  requestId?: string;
};

export interface ContextDeps {
  config: Config;
  stores: Stores;
  live: Live;
  rateLimiter: RateLimiter;
}

/** A header's value from a plain object of headers, whatever the case of its name. */
function headerIn(headers: unknown, name: string): unknown {
  if (!headers || typeof headers !== "object") return undefined;
  const key = Object.keys(headers).find((candidate) => candidate.toLowerCase() === name);
  return key === undefined ? undefined : (headers as Record<string, unknown>)[key];
}

/**
 * The Authorization value of one operation. HTTP and SSE: the request header. graphql-ws: the
 * operation's own `extensions.headers` (where GraphiQL puts the headers of its editor), else the
 * connection's `connectionParams` (where client libraries put it). Read for every operation.
 */
function authorizationOf(initial: InitialContext): unknown {
  if (initial.request) return initial.request.headers.get("authorization") ?? undefined;
  return (
    headerIn(initial.params?.extensions?.headers, "authorization") ??
    headerIn(initial.connectionParams, "authorization")
  );
}

export type ContextFactory = (initial: InitialContext) => Promise<Context>;

export function createContextFactory({ config, stores, live, rateLimiter }: ContextDeps): ContextFactory {
  return async (initial) => {
    const claims = await verifyBearer(config, authorizationOf(initial));
    // The rate-limit count and the token check go to Redis together: one round trip per operation.
    let rateLimit = rateLimiter.start(claims.username, initial.req, claims.jwt);
    const auth = await checkRegistered(stores, claims);
    // A logged-out token counts like no token, so it cannot spend its owner's limit.
    if (claims.jwt !== null && claims.username !== null)
      rateLimit = rateLimiter.settle(
        rateLimit,
        claims.jwt,
        auth.error?.extensions.code !== "UNAUTHENTICATED",
        claims.username,
        initial.req,
      );
    return {
      rateLimit,
      config,
      stores,
      live,
      viewer: auth.viewer,
      authError: auth.error,
      loaders: createLoaders(stores, auth.viewer),
      requestId: initial.requestId ?? randomUUID(),
    };
  };
}

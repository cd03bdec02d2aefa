// The gateway's request pipeline as one list of Yoga/Envelop plugins, wired by buildApp. Envelop hooks
// (parse, validate, execute, subscribe) run for HTTP and for graphql-ws, because src/server/websocket.ts
// runs WebSocket operations through yoga.getEnveloped; Yoga-only hooks (request parsing: CSRF, body
// size, persisted-operation lookup) have their graphql-ws counterpart noted where it lives.
import type { IncomingMessage } from "node:http";
import { NoSchemaIntrospectionCustomRule, type GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";
import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import { useCSRFPrevention } from "@graphql-yoga/plugin-csrf-prevention";
import type { Config } from "../config.js";
import type { Context } from "../context.js";
import type { Logger } from "../observability/logger.js";
import type { Observation } from "../observability/scope.js";
import type { Stores } from "../stores/index.js";
import { useErrorPolicy } from "./errors.js";
import { armorLimits, useLimits } from "./limits.js";
import { useObservability } from "./observability.js";
import { useResultExtensions } from "./result-extensions.js";
import { PersistedOperations, usePersisted } from "./persisted.js";
import { RateLimiter, refuseFlood, useRateLimit } from "./rate-limit.js";
import { useUploadGate } from "./uploads.js";
import { useSharedEventResults } from "../live/shared-events.js";

/** The header a browser cannot send cross-site without a CORS preflight (see useCSRFPrevention). */
export const CSRF_HEADER = "x-graphql-csrf";

export interface PluginDeps {
  stores: Stores;
  logger: Logger;
  observation: Observation;
}

export interface GatewayPlugins {
  plugins: Plugin<Context>[];
  /** Set when PERSISTED_OPERATIONS_FILE is: graphql-ws operations resolve their query through it. */
  persisted: PersistedOperations | null;
  /** RATE_LIMITED for an address past its invalid-document limit (graphql-ws checks it before parsing). */
  refuseFlood(req: IncomingMessage | undefined): Promise<GraphQLError | null>;
  /** The context factory starts each operation's count with it, beside the token check. */
  rateLimiter: RateLimiter;
}

export function createPlugins(config: Config, deps: PluginDeps): GatewayPlugins {
  const { logger, observation } = deps;
  const persisted = config.persistedOperationsFile ? PersistedOperations.load(config.persistedOperationsFile) : null;
  const transportOf = (context: { request?: unknown }) => (context.request ? "http" : "ws");
  const rateLimiter = new RateLimiter(deps.stores.redis.rateLimits, config.rateLimit);
  const countRejection = (limit: string) => observation.metrics.rejections.inc({ reason: limit });
  const plugins: Plugin<Context>[] = [
    // Before observability: it replaces the executor's subscribe, which observability then wraps.
    useSharedEventResults(observation),
    // First of the rest, so that its end-of-operation hooks see every outcome (including rejections below).
    useObservability(observation, logger, transportOf),
    useErrorPolicy(logger),
    useResultExtensions(),
    useCSRFPrevention({ requestHeaders: [CSRF_HEADER] }) as Plugin<Context>,
    // Before every plugin that wraps the parser: armor's token count replaces the parse function.
    EnvelopArmorPlugin({
      ...armorLimits(config.limits, countRejection),
      // "Did you mean ...?" hints leak the schema just as introspection does.
      blockFieldSuggestion: { enabled: !config.introspection, mask: "" },
    }),
    ...((persisted ? usePersisted(persisted) : []) as Plugin<Context>[]),
    useLimits(config.limits, countRejection) as Plugin<Context>,
    useRateLimit(rateLimiter, config.rateLimit, logger, observation.metrics),
    // After the body-size check (limits), before Yoga reads a multipart body.
    useUploadGate(config, deps.stores, observation.metrics) as Plugin<Context>,
  ];
  if (!config.introspection) {
    plugins.push({ onValidate: ({ addValidationRule }) => addValidationRule(NoSchemaIntrospectionCustomRule) });
  }
  return {
    plugins,
    persisted,
    rateLimiter,
    refuseFlood: (req) => refuseFlood(rateLimiter, config.rateLimit, req, logger),
  };
}

// buildApp(config): wires the gateway's parts together (docs/architecture.md, "Transports"); each
// part lives in src/server/. main.ts only starts it; tests boot it on a random port.
import type { Server } from "node:http";
import type { Config } from "./config.js";
import { createLive, type Live } from "./live/index.js";
import { createLogger, type Logger } from "./observability/logger.js";
import { Metrics } from "./observability/metrics.js";
import { runObserved } from "./observability/scope.js";
import { noTracing, openTelemetryHooks, type TracingHooks } from "./observability/tracing.js";
import { createPlugins } from "./plugins/index.js";
import { drainAnswers } from "./resolvers/ask.js";
import { healthReport } from "./resolvers/health.js";
import { backgroundJobs } from "./server/background-jobs.js";
import { createContextFactory } from "./server/context.js";
import type { GraphiQLSettings } from "./server/graphiql.js";
import { createGatewayServer, listen } from "./server/http.js";
import { operationalRoutes } from "./server/operational-routes.js";
import { attachWebSockets } from "./server/websocket.js";
import { createGatewayYoga, type GatewayYoga } from "./server/yoga.js";
import { closeStores, createStores, type Stores } from "./stores/index.js";

export interface App {
  config: Config;
  stores: Stores;
  live: Live;
  yoga: GatewayYoga;
  server: Server;
  logger: Logger;
  metrics: Metrics;
  /** Listens on config.port (0 = a random free port) and resolves with the base URL. */
  start(): Promise<string>;
  /** Resolves once Mongo has every index of INDEX_PLAN (stores/mongo.ts); retried in the background until then. */
  indexesReady: Promise<void>;
  stop(): Promise<void>;
}

export interface AppOptions {
  /** The structured logger (default: pino to stdout at LOG_LEVEL); tests pass one to capture it. */
  logger?: Logger;
  /** Tracing hooks (default: OpenTelemetry's API when TRACING_ENABLED, else none). */
  tracing?: TracingHooks;
  /** What GraphiQL opens with in development (`npm start` passes the demo user's header). */
  graphiql?: GraphiQLSettings;
}

export function buildApp(config: Config, stores: Stores = createStores(config), options: AppOptions = {}): App {
  const logger = options.logger ?? createLogger(config);
  const live = createLive(config, stores);
  const metrics = new Metrics();
  metrics.observePageCache("page_vector_cache", stores.milvus.pageVectorCache);
  metrics.observePageCache("page_code_cache", stores.milvus.pageCodeCache);
  metrics.observeSettledFiles(stores.mongo.settledFiles);
  const observation = {
    metrics,
    tracing: options.tracing ?? (config.tracing.enabled ? openTelemetryHooks() : noTracing),
  };
  // Limits, rate limit, CSRF, error policy, persisted operations, logs, metrics: src/plugins/.
  const gatewayPlugins = createPlugins(config, { stores, logger, observation });
  const context = createContextFactory({ config, stores, live, rateLimiter: gatewayPlugins.rateLimiter });
  const yoga = createGatewayYoga({
    config,
    plugins: gatewayPlugins.plugins,
    context,
    logger,
    graphiql: options.graphiql,
  });
  const server = createGatewayServer(
    yoga,
    operationalRoutes({
      metrics,
      metricsToken: config.metricsToken,
      readiness: () => runObserved(observation, () => healthReport({ config, stores })),
      logger,
    }),
  );
  const webSockets = attachWebSockets(server, { config, yoga, gatewayPlugins, logger, metrics });
  const jobs = backgroundJobs({ config, stores }, observation, logger);

  return {
    config,
    stores,
    live,
    yoga,
    server,
    logger,
    metrics,
    start: async () => {
      const { port } = await listen(server, config.port, config.host);
      jobs.start();
      const host = config.host === "0.0.0.0" ? "127.0.0.1" : config.host;
      return `http://${host}:${port}`;
    },
    indexesReady: jobs.indexesReady,
    stop: async () => {
      // Running answers finish (or are saved as aborted) while their askers are still connected to see it.
      await drainAnswers(live, config.ask.drainMs);
      await jobs.stop();
      await webSockets.dispose();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await live.close();
      await closeStores(stores);
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
    },
  };
}

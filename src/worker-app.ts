// buildWorker(config): the ingestion worker as an object that starts and stops, with its own
// /health, /readiness and /metrics on WORKER_PORT; src/worker.ts runs it, and the local dev start runs one too.
import { createServer, type Server } from "node:http";
import type { Config } from "./config.js";
import { healthReport } from "./resolvers/health.js";
import { runWorker, type ConsumerState } from "./resolvers/ingestion/worker.js";
import { createLogger, type Logger } from "./observability/logger.js";
import { Metrics } from "./observability/metrics.js";
import { runObserved } from "./observability/scope.js";
import { noTracing } from "./observability/tracing.js";
import { closeStores, createStores } from "./stores/index.js";
import { createRenderer } from "./resolvers/ingestion/page-renderer.js";
import { listen } from "./server/http.js";
import { operationalRoutes } from "./server/operational-routes.js";

export interface Worker {
  /** Joins the consumer group and serves /health and /metrics; answers the metrics URL. */
  start(): Promise<string>;
  /** Stops after the message in hand (its offset is committed only if it finished; a render in progress is killed). */
  stop(): Promise<void>;
}

export interface WorkerOptions {
  logger?: Logger;
  /** Called when the worker gives up for good (no Kafka consumer for KAFKA_RECONNECT_PATIENCE_MS). */
  onFatal?: (error: unknown) => void;
}

export function buildWorker(config: Config, options: WorkerOptions = {}): Worker {
  const logger = (options.logger ?? createLogger(config)).child({ component: "ingest-worker" });
  const stores = createStores(config);
  const metrics = new Metrics();
  const renderer = createRenderer(config);
  const deps = { config, stores, renderer, logger, metrics };
  const consumer: ConsumerState = { consuming: false };
  const routes = operationalRoutes({
    metrics,
    metricsToken: config.metricsToken,
    logger,
    // A worker without a consumer does nothing: not live, so a supervisor sees it (docs/operations.md, "The worker's health").
    live: () => consumer.consuming,
    readiness: async () => {
      const report = await healthReport({ config, stores });
      const member = { store: "kafka-consumer", up: consumer.consuming, latencyMs: 0 };
      return { ready: report.ready && member.up, stores: [...report.stores, member] };
    },
  });
  const abort = new AbortController();
  let running: Promise<void> | null = null;
  let server: Server | null = null;
  return {
    start: async () => {
      server = createServer((req, res) => {
        void routes(req, res).then((handled) => {
          if (!handled) res.writeHead(404).end();
        });
      });
      const { port } = await listen(server, config.ingest.workerPort, config.host);
      const staleFolders = await renderer.removeStale();
      if (staleFolders > 0)
        logger.warn({ folders: staleFolders }, "removed the render folders of a worker that was killed");
      // The forward target for messages the worker does not handle must exist before the first one.
      await stores.kafka.ensureTopic(config.kafka.unhandledTopic, 1);
      // Joined the group before start() answers, so work sent afterwards finds a member.
      const first = await stores.kafka.consume();
      running = runObserved({ metrics, tracing: noTracing }, () =>
        runWorker(deps, first, () => stores.kafka.consume(), abort.signal, consumer),
      ).catch((error: unknown) => {
        logger.fatal({ err: error }, "the ingestion worker stopped");
        options.onFatal?.(error);
      });
      logger.info({ topic: config.kafka.topic, group: config.kafka.groupId, port }, "ingestion worker started");
      return `http://${config.host}:${port}/metrics`;
    },
    stop: async () => {
      abort.abort();
      // A file in the middle of rendering is left for redelivery, not waited for.
      renderer.stop();
      await running;
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      await closeStores(stores);
    },
  };
}

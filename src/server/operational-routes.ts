// The routes beside GraphQL that operators and orchestrators call: liveness, Prometheus metrics and,
// where the process has stores, readiness. The gateway and the ingestion worker both serve them.
// Not Yoga's healthCheckEndpoint or useReadinessCheck: they answer other bodies and the worker has no Yoga.
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { errorMessage } from "../errors.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import { publicHealth, type HealthReport } from "../resolvers/health.js";

export interface OperationalRouteDeps {
  metrics: Metrics;
  /** When set, /metrics answers only `Authorization: Bearer <token>` (METRICS_TOKEN). */
  metricsToken?: string;
  /** Whether the process can do its work at all (the worker: a member of its consumer group); /health is 503 while not. */
  live?: () => boolean;
  /** The stores' health for /readiness; a process without stores serves no /readiness. */
  readiness?: () => Promise<HealthReport>;
  logger: Logger;
}

/** Answers `req` when its path is an operational route; resolves false, untouched, otherwise. */
export type OperationalRoutes = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/** Compares in constant time, so the token cannot be guessed byte by byte from response times. */
function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function operationalRoutes({
  metrics,
  metricsToken,
  live,
  readiness,
  logger,
}: OperationalRouteDeps): OperationalRoutes {
  // Each probed report is logged once when a store is down (reports are shared for READINESS_CACHE_MS).
  let lastLogged: HealthReport | null = null;
  const logUnready = (report: HealthReport) => {
    if (report.ready || report === lastLogged) return;
    lastLogged = report;
    const down = report.stores.filter((store) => !store.up).map(({ store, error }) => ({ store, error }));
    logger.warn({ down }, "readiness: stores down");
  };

  const answer = async (req: IncomingMessage, res: ServerResponse, path: string | undefined): Promise<boolean> => {
    if (path === "/health") {
      const ok = live?.() ?? true;
      res
        .writeHead(ok ? 200 : 503, { "content-type": "application/json" })
        .end(JSON.stringify({ status: ok ? "ok" : "unavailable" }));
      return true;
    }
    if (path === "/metrics") {
      if (metricsToken && !sameSecret(req.headers.authorization ?? "", `Bearer ${metricsToken}`)) {
        res.writeHead(401, { "www-authenticate": "Bearer" }).end();
        return true;
      }
      res.writeHead(200, { "content-type": metrics.registry.contentType }).end(await metrics.registry.metrics());
      return true;
    }
    if (path === "/readiness" && readiness) {
      const report = await readiness();
      logUnready(report);
      res
        .writeHead(report.ready ? 200 : 503, { "content-type": "application/json" })
        .end(JSON.stringify(publicHealth(report)));
      return true;
    }
    return false;
  };
  // A route that fails (the metrics registry, a readiness probe) answers 500 instead of leaving the
  // request hanging and the rejection unhandled.
  return async (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    try {
      return await answer(req, res, path);
    } catch (error) {
      logger.error({ path, error: errorMessage(error) }, "operational route failed");
      if (!res.headersSent) res.writeHead(500);
      res.end();
      return true;
    }
  };
}

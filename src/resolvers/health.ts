// Store health for `health` and /readiness, both public: probed at most once per
// READINESS_CACHE_MS whatever the request rate (one probe in flight, its result shared), and shown
// as store names and states only. A failed probe's driver message (which names the store's
// address) stays in the report for the log, never in an answer.
import type { StoreAccess } from "../context.js";
import { cachedSingleFlight } from "../lib/cached.js";
import { storesHealth, type Stores } from "../stores/index.js";
import type { StoreHealth } from "../stores/health.js";

export interface HealthReport {
  ready: boolean;
  stores: StoreHealth[];
}

const probes = new WeakMap<Stores, () => Promise<HealthReport>>();

export function healthReport({ config, stores }: StoreAccess): Promise<HealthReport> {
  let probe = probes.get(stores);
  if (!probe) {
    probe = cachedSingleFlight(config.readinessCacheMs, async () => {
      const results = await storesHealth(stores);
      return { ready: results.every((result) => result.up), stores: results };
    });
    probes.set(stores, probe);
  }
  return probe();
}

/** The report as an unauthenticated caller may see it: no driver messages, no addresses. */
export function publicHealth(report: HealthReport) {
  return {
    ready: report.ready,
    stores: report.stores.map(({ store, up, latencyMs }) => ({ store, up, latencyMs })),
  };
}

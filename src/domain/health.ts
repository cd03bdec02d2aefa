import { storesHealth, type Stores } from "../stores/index.js";
import type { StoreHealth } from "../stores/health.js";

export interface HealthReport {
  ready: boolean;
  stores: StoreHealth[];
}

export async function healthReport(stores: Stores): Promise<HealthReport> {
  const results = await storesHealth(stores);
  return { ready: results.every((result) => result.up), stores: results };
}

// Which app's metrics and tracing hooks the current async call belongs to. The GraphQL plugins run
// every operation (HTTP, SSE and graphql-ws, subscription events included) inside the app's scope,
// so store and loader helpers can report to the right per-app registry without extra parameters.
import { AsyncLocalStorage } from "node:async_hooks";
import type { Metrics } from "./metrics.js";
import type { TracingHooks } from "./tracing.js";

export interface Observation {
  metrics: Metrics;
  tracing: TracingHooks;
}

const storage = new AsyncLocalStorage<Observation>();

/** Runs `fn` with `observation` as the current scope (outside any scope store calls are not observed). */
export function runObserved<T>(observation: Observation, fn: () => T): T {
  return storage.run(observation, fn);
}

export function currentObservation(): Observation | undefined {
  return storage.getStore();
}

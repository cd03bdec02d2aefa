// observeStoreCall: one store call's latency and errors in the current app's metrics, plus a tracing span;
// outside an app's observation scope the call runs unobserved (docs/operations.md, "Metrics, logs and tracing").
import { currentObservation } from "../observability/scope.js";

export async function observeStoreCall<T>(store: string, fn: () => Promise<T>, operation = "call"): Promise<T> {
  const observation = currentObservation();
  if (!observation) return fn();
  const span = observation.tracing.startSpan(`store ${store} ${operation}`, {
    "layra.store": store,
    "layra.store.operation": operation,
  });
  const started = performance.now();
  try {
    const result = await fn();
    observation.metrics.storeCalls.observe(
      { store, operation, outcome: "success" },
      (performance.now() - started) / 1000,
    );
    span.end();
    return result;
  } catch (error) {
    observation.metrics.storeCalls.observe(
      { store, operation, outcome: "error" },
      (performance.now() - started) / 1000,
    );
    observation.metrics.storeErrors.inc({ store, operation });
    span.end(error);
    throw error;
  }
}

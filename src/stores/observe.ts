// observeStoreCall(store, fn): the latency and errors of one store call, per store, in the current
// app's metrics (/metrics: store_call_duration_seconds, store_call_errors_total), plus a tracing
// span when tracing is on. Every store call made from a GraphQL operation runs inside the app's
// observation scope; outside one (a script, a background job) the call runs unobserved.
//
//     const doc = await observeStoreCall("mongo", () => files.findOne({ file_id }), "files.findOne");
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

// Tracing hooks, off by default (TRACING_ENABLED). The gateway only opens spans through this small
// interface: one span per GraphQL operation (named after the operation, with its root fields as an
// attribute) and one per observed store call. With TRACING_ENABLED=true the spans go to the
// OpenTelemetry API; they are exported only if the operator registers an OpenTelemetry SDK in the
// process (e.g. `node --import @opentelemetry/auto-instrumentations-node/register`), otherwise the
// API is a no-op. Tests and embedders can pass their own hooks to buildApp.
import { SpanStatusCode, trace } from "@opentelemetry/api";
import { errorMessage } from "../errors.js";

export type SpanAttributes = Record<string, string | number | boolean | string[]>;

interface SpanHandle {
  end(error?: unknown): void;
}

export interface TracingHooks {
  startSpan(name: string, attributes: SpanAttributes): SpanHandle;
}

const noopSpan: SpanHandle = { end: () => undefined };
export const noTracing: TracingHooks = { startSpan: () => noopSpan };

export function openTelemetryHooks(): TracingHooks {
  const tracer = trace.getTracer("layra-graphql-gateway");
  return {
    startSpan: (name, attributes) => {
      const span = tracer.startSpan(name, { attributes });
      return {
        end: (error) => {
          if (error !== undefined) {
            span.recordException(error instanceof Error ? error : String(error));
            span.setStatus({
              code: SpanStatusCode.ERROR,
              message: errorMessage(error),
            });
          }
          span.end();
        },
      };
    },
  };
}

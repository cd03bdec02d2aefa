// Tracing hooks, off by default: spans go to the OpenTelemetry API, which exports only when the operator
// registers an SDK in the process (docs/operations.md, "Metrics, logs and tracing").
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

// One request id, one log line, one metric sample and (when tracing is on) one span per operation,
// for HTTP and graphql-ws alike; subscriptions log when they start and end and are counted in the
// open-subscriptions gauge. Execution (and every subscription event) runs inside the app's
// observation scope, so observeStoreCall/observedBatch report to this app's registry.
import { randomUUID } from "node:crypto";
import type { ExecutionResult, GraphQLError } from "graphql";
import { getOperationAST } from "graphql";
import { isAsyncIterable, type Plugin } from "graphql-yoga";
import type { Context } from "../context.js";
import { rootFieldNames } from "../lib/root-fields.js";
import type { Logger } from "../observability/logger.js";
import type { Outcome } from "../observability/metrics.js";
import { runObserved, type Observation } from "../observability/scope.js";
import { subscriptionStream } from "../live/shared-events.js";
import { errorMessage } from "../errors.js";

const REJECTION_CODES = new Set([
  "LIMIT_EXCEEDED",
  "RATE_LIMITED",
  "PERSISTED_QUERY_ONLY",
  "PERSISTED_QUERY_NOT_FOUND",
]);
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The client's X-Request-Id when it is a sane token, else a new UUID. */
function requestIdFrom(header: string | null | undefined): string {
  return header && REQUEST_ID.test(header) ? header : randomUUID();
}

function outcomeOf(errors: readonly GraphQLError[] | undefined): Outcome {
  if (!errors || errors.length === 0) return "success";
  return errors.every((error) => REJECTION_CODES.has(String(error.extensions?.code))) ? "rejected" : "error";
}

type Initial = Partial<Context> & { request?: Request; params?: { operationName?: string | null } };

export function useObservability(
  observation: Observation,
  logger: Logger,
  transportOf: (context: Initial) => string,
): Plugin<Context> {
  const { metrics, tracing } = observation;
  const started = new WeakMap<object, number>();
  const since = (context: object) => (performance.now() - (started.get(context) ?? performance.now())) / 1000;

  return {
    onParse({ context, extendContext }) {
      const initial = context as Initial;
      if (!started.has(context)) started.set(context, performance.now());
      if (!initial.requestId) extendContext({ requestId: requestIdFrom(initial.request?.headers.get("x-request-id")) });
    },
    onValidate({ context }) {
      return ({ valid, result }) => {
        if (valid) return;
        const initial = context as Initial;
        const codes = result.map((error) => String((error as GraphQLError).extensions?.code ?? ""));
        if (!codes.includes("LIMIT_EXCEEDED")) metrics.rejections.inc({ reason: "validation" });
        metrics.recordOperation(initial.params?.operationName, "unknown", "rejected", since(context), false);
        logger.info(
          {
            requestId: initial.requestId,
            transport: transportOf(initial),
            operation: initial.params?.operationName ?? null,
            errors: result.map((error) => error.message),
          },
          "operation rejected",
        );
      };
    },
    onExecute({ args, executeFn, setExecuteFn }) {
      const context = args.contextValue;
      const operation = getOperationAST(args.document, args.operationName);
      const type = operation?.operation ?? "query";
      const name = args.operationName ?? operation?.name?.value ?? null;
      const span = tracing.startSpan(`graphql ${type} ${name ?? "anonymous"}`, {
        "graphql.operation.type": type,
        "graphql.operation.name": name ?? "",
        "graphql.root_fields": operation ? rootFieldNames(args.document, operation) : [],
        "layra.request_id": context.requestId,
      });
      setExecuteFn((executionArgs) => runObserved(observation, () => executeFn(executionArgs)));
      return {
        onExecuteDone({ result }) {
          const errors = isAsyncIterable(result) ? undefined : (result as ExecutionResult).errors;
          const outcome = outcomeOf(errors);
          const seconds = since(context);
          metrics.recordOperation(name, type, outcome, seconds);
          span.end(outcome === "error" ? errors?.[0] : undefined);
          logger.info(
            {
              requestId: context.requestId,
              transport: transportOf(context as Initial),
              operation: name,
              type,
              outcome,
              durationMs: Math.round(seconds * 1000 * 100) / 100,
              user: context.viewer?.username ?? null,
              errors: errors?.map((error) => ({
                message: error.message,
                code: error.extensions?.code,
                path: error.path,
              })),
            },
            "operation",
          );
        },
      };
    },
    onSubscribe({ args, subscribeFn, setSubscribeFn }) {
      const context = args.contextValue;
      const operation = getOperationAST(args.document, args.operationName);
      const name = args.operationName ?? operation?.name?.value ?? null;
      const base = {
        requestId: context.requestId,
        transport: transportOf(context),
        operation: name,
        user: context.viewer?.username ?? null,
      };
      setSubscribeFn((subscribeArgs) => runObserved(observation, () => subscribeFn(subscribeArgs)));
      return {
        onSubscribeResult({ result }) {
          const stream = subscriptionStream(result);
          if (!stream) {
            const outcome = outcomeOf((result as ExecutionResult).errors);
            metrics.recordOperation(name, "subscription", outcome, since(context));
            logger.info(
              { ...base, outcome, errors: (result as ExecutionResult).errors?.map((error) => error.message) },
              "subscription refused",
            );
            return;
          }
          metrics.recordOperation(name, "subscription", "success", since(context));
          metrics.openSubscriptions.inc();
          const span = tracing.startSpan(`graphql subscription ${name ?? "anonymous"}`, {
            "graphql.operation.type": "subscription",
            "graphql.operation.name": name ?? "",
            "graphql.root_fields": operation ? rootFieldNames(args.document, operation) : [],
            "layra.request_id": context.requestId,
          });
          const opened = performance.now();
          logger.info(base, "subscription started");
          // Events need no hook of their own: they are executed inside this app's scope when pushed
          // (useSharedEventResults); the stream's end, or its failure, is observed here.
          stream.onEnd((error?: unknown) => {
            metrics.openSubscriptions.dec();
            if (error !== undefined) metrics.recordOperation(name, "subscription", "error", since(context));
            span.end(error);
            logger.info(
              {
                ...base,
                durationMs: Math.round(performance.now() - opened),
                error: error === undefined ? undefined : errorMessage(error),
              },
              "subscription ended",
            );
          });
        },
      };
    },
  };
}

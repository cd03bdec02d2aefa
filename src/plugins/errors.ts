// The error policy, the gateway's only masking: GraphQLErrors pass redacted, store outages become
// UPSTREAM_UNAVAILABLE, anything else is logged and masked (docs/architecture.md, "Typed errors").
import { GraphQLError, type ExecutionResult } from "graphql";
import { handleStreamOrSingleExecutionResult, isAsyncIterable, type Plugin } from "graphql-yoga";
import type { Context } from "../context.js";
import { CascadeIncomplete, typedError, UpstreamUnavailable } from "../errors.js";
import { redactText } from "../lib/redact.js";
import type { Logger } from "../observability/logger.js";
import { mapSubscriptionResults } from "../live/shared-events.js";

function isExpectedError(error: GraphQLError): boolean {
  const original = error.originalError;
  return (
    original === undefined || original === null || original instanceof GraphQLError || original.name === "GraphQLError"
  );
}

/** An error as the client may see it: secrets redacted from its message (src/lib/redact.ts). */
function redacted(error: GraphQLError, message = error.message, extensions = error.extensions): GraphQLError {
  return new GraphQLError(redactText(message), { nodes: error.nodes, path: error.path, extensions });
}

/** A store outage's driver message (which may name an address) goes to the log, never to the client. */
function logOutage(logger: Logger, error: unknown, requestId: string | undefined) {
  if (error instanceof UpstreamUnavailable)
    logger.warn({ requestId, store: error.store, reason: error.reason }, "store unavailable");
  else if (error instanceof CascadeIncomplete)
    logger.warn(
      { requestId, what: error.what, remaining: error.remaining, reason: error.reason },
      "cascade incomplete",
    );
}

/** No data and only errors that no resolver raised: the operation never ran. */
function rejectedBeforeExecution(result: ExecutionResult): boolean {
  return (
    result.data === undefined &&
    Boolean(result.errors?.length) &&
    result.errors!.every((error) => error.path === undefined && isExpectedError(error)) &&
    result.errors!.some((error) => !error.extensions.code)
  );
}

export function maskResult(
  result: ExecutionResult,
  context: Partial<Context>,
  logger: Logger,
  operation?: string | null,
): ExecutionResult | null {
  if (rejectedBeforeExecution(result)) {
    // graphql-js rejects bad variables (and an unknown operation name) before executing, without a
    // code: give them the code every other input error has (docs/errors.md).
    return {
      errors: result.errors!.map((error) =>
        error.extensions.code
          ? redacted(error)
          : new GraphQLError(redactText(error.message), { nodes: error.nodes, extensions: { code: "BAD_USER_INPUT" } }),
      ),
    };
  }
  if (!result.errors?.length) return null;
  const requestId = context.requestId;
  return {
    ...result,
    errors: result.errors.map((error) => {
      if (isExpectedError(error)) {
        logOutage(logger, error.originalError, requestId);
        return redacted(error);
      }
      const typed = typedError(error.originalError);
      if (typed instanceof GraphQLError) {
        logOutage(logger, typed, requestId);
        return redacted(error, typed.message, typed.extensions);
      }
      logger.error(
        { requestId, err: error.originalError, path: error.path, operation },
        "unexpected error (masked for the client)",
      );
      return new GraphQLError("Unexpected error.", {
        nodes: error.nodes,
        path: error.path,
        extensions: { code: "INTERNAL_SERVER_ERROR", requestId },
      });
    }),
  };
}

/**
 * An error raised outside a result (a stream's failure, the context factory) as the client may see
 * it: expected and typed errors redacted, anything else logged in full and replaced.
 */
function clientError(error: unknown, logger: Logger, requestId: string | undefined, where: string): GraphQLError {
  if (error instanceof GraphQLError && isExpectedError(error)) {
    logOutage(logger, error.originalError ?? error, requestId);
    return redacted(error);
  }
  const typed = typedError(error instanceof GraphQLError ? error.originalError : error);
  if (typed instanceof GraphQLError) {
    logOutage(logger, typed, requestId);
    return redacted(typed);
  }
  logger.error({ requestId, err: error }, `unexpected ${where} error (masked for the client)`);
  return new GraphQLError("Unexpected error.", { extensions: { code: "INTERNAL_SERVER_ERROR", requestId } });
}

/**
 * The last line for HTTP: a response's errors that no hook above produced (Yoga turns an exception
 * thrown anywhere in its pipeline into an error carrying the exception's message) are masked here.
 * Expected errors keep their extensions, so Yoga's HTTP status for them stays.
 */
function maskUnexpected(result: ExecutionResult, logger: Logger): ExecutionResult | null {
  if (!result.errors?.some((error) => !isExpectedError(error))) return null;
  return {
    ...result,
    errors: result.errors.map((error) =>
      isExpectedError(error) ? error : clientError(error.originalError, logger, undefined, "request"),
    ),
  };
}

/**
 * Also covers the context factory and the HTTP pipeline, because Yoga's masking is off (`maskedErrors:
 * false`, src/server/yoga.ts; why in docs/performance.md, "Live progress").
 */
export function useErrorPolicy(logger: Logger): Plugin<Context> {
  return {
    onPluginInit({ registerContextErrorHandler }) {
      registerContextErrorHandler(({ context, error, setError }) =>
        setError(clientError(error, logger, (context as Partial<Context>).requestId, "context")),
      );
    },
    onResultProcess({ result, setResult }) {
      if (isAsyncIterable(result) || Array.isArray(result)) return;
      const masked = maskUnexpected(result as ExecutionResult, logger);
      if (masked) setResult(masked);
    },
    onExecute({ args }) {
      return {
        onExecuteDone: (payload) =>
          handleStreamOrSingleExecutionResult(payload, ({ result, setResult }) => {
            const masked = maskResult(result, args.contextValue, logger, args.operationName);
            if (masked) setResult(masked);
          }),
      };
    },
    onSubscribe({ args }) {
      const { contextValue, operationName } = args;
      return {
        onSubscribeResult: (payload) =>
          mapSubscriptionResults(
            payload,
            (result) => maskResult(result, contextValue, logger, operationName),
            // A failure of the stream itself (a store outage, a revoked token, a bug).
            (error) => clientError(error, logger, contextValue.requestId, "subscription"),
          ),
      };
    },
  };
}

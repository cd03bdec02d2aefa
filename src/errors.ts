// Expected failures, each a GraphQLError with `extensions.code` (docs/architecture.md, "Typed errors"). Anything
// else that escapes a resolver is masked for the client and logged.
import { GraphQLError } from "graphql";

export class Unauthenticated extends GraphQLError {
  constructor(message = "authentication required: send a valid LAYRA bearer token") {
    super(message, { extensions: { code: "UNAUTHENTICATED", http: { status: 401 } } });
  }
}

/** "Not yours" and "does not exist" are the same answer, so ids leak nothing. */
export class NotFound extends GraphQLError {
  constructor(kind: string, id: string) {
    super(`${kind} ${JSON.stringify(id)} not found`, { extensions: { code: "NOT_FOUND" } });
  }
}

export class BadUserInput extends GraphQLError {
  constructor(argument: string, problem: string) {
    super(`${argument}: ${problem}`, { extensions: { code: "BAD_USER_INPUT", argument } });
  }
}

export class Forbidden extends GraphQLError {
  constructor(message: string) {
    super(message, { extensions: { code: "FORBIDDEN" } });
  }
}

/**
 * A store or the model server could not answer: only the fields that need it fail. The client sees
 * the store's name only; `reason` (a driver message that may hold an address) goes to the log.
 */
export class UpstreamUnavailable extends GraphQLError {
  constructor(
    readonly store: string,
    readonly reason: string,
  ) {
    super(`${store} is unavailable`, { extensions: { code: "UPSTREAM_UNAVAILABLE", store } });
  }
}

/**
 * commitUploads after the upload's commit deadline: its objects are (or are about to be) removed by
 * the sweep, so the files must be sent again with new URLs.
 */
export class UploadExpired extends GraphQLError {
  constructor(uploadId: string) {
    super(
      `upload ${JSON.stringify(uploadId)} expired: it was not committed by its deadline and its uploaded objects are removed; start again with createUploadUrls`,
      { extensions: { code: "UPLOAD_EXPIRED" } },
    );
  }
}

/**
 * runWorkflow: a graph LAYRA's engine refuses. The message is LAYRA's own `msg` (`工作流验证失败: ...`)
 * where its engine's checks fail (`layraCode` -1), or says what is missing where LAYRA fails with a
 * system error (`layraCode` -3).
 */
export class WorkflowInvalid extends GraphQLError {
  constructor(message: string, layraCode: -1 | -3) {
    super(message, { extensions: { code: "WORKFLOW_INVALID", layraCode } });
  }
}

/** A resume of a run whose saved state expired: LAYRA's own message ("the task expired, run it again"). */
export class WorkflowRunExpired extends GraphQLError {
  constructor(taskId: string) {
    super("任务过期，请重新执行！", { extensions: { code: "WORKFLOW_RUN_EXPIRED", taskId } });
  }
}

/** A request-safety limit (depth, aliases, cost, tokens, document or body size) was exceeded. */
export class LimitExceeded extends GraphQLError {
  constructor(
    readonly limit: string,
    readonly value: number,
    readonly max: number,
    unit = "",
  ) {
    super(`${limit} ${value}${unit} exceeds the limit of ${max}${unit}`, {
      extensions: { code: "LIMIT_EXCEEDED", limit, value, max },
    });
  }
}

/** Another request holds the lock on the same data; retrying later is safe. */
export class Conflict extends GraphQLError {
  constructor(message: string) {
    super(message, { extensions: { code: "CONFLICT" } });
  }
}

/**
 * A cascade stopped part-way because a store failed. Every step is idempotent and ordered so that
 * what is left stays findable: running the same mutation again finishes the job. The client sees
 * which store failed, never the driver's message (it may name an address); `reason` goes to the log.
 * `cause` is the failure, or a sentence of the gateway's own.
 */
export class CascadeIncomplete extends GraphQLError {
  readonly reason: string;

  constructor(
    readonly what: string,
    readonly remaining: string[],
    cause: unknown,
  ) {
    super(
      `${what} is incomplete (${publicReason(cause)}); left: ${remaining.join(", ")}. Run the same mutation again to finish it.`,
      {
        extensions: { code: "CASCADE_INCOMPLETE", remaining, retryable: true },
      },
    );
    this.reason = cause instanceof UpstreamUnavailable ? cause.reason : errorMessage(cause);
  }
}

/** Too many operations from one user (or one address) in the current window. */
export class RateLimited extends GraphQLError {
  constructor(
    readonly subject: "user" | "ip",
    count: number,
    max: number,
    windowMs: number,
    retryAfterMs: number,
  ) {
    const retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
    super(
      `rate limit exceeded: ${count} operations exceed the limit of ${max} per ${windowMs / 1000} s for this ${subject}; retry after ${retryAfterSeconds} s`,
      {
        extensions: {
          code: "RATE_LIMITED",
          limit: max,
          windowMs,
          retryAfterMs,
          retryAfterSeconds,
          http: { status: 429, headers: { "retry-after": String(retryAfterSeconds) } },
        },
      },
    );
  }
}

/** How a call to a conversation's chat model failed (docs/errors.md, "Answers"). */
export type ChatModelFailure = "MODEL_UNAVAILABLE" | "MODEL_REFUSED" | "MODEL_TIMEOUT" | "MODEL_URL_REFUSED";

/**
 * The chat model named by a conversation's settings could not answer. The message is the gateway's own: never
 * the API key, the URL, an address it resolved to, or the provider's text (which may quote the key).
 */
export class ChatModelFailed extends GraphQLError {
  constructor(
    readonly failure: ChatModelFailure,
    message: string,
  ) {
    super(message, { extensions: { code: failure } });
  }
}

/** The message of anything thrown: an Error's message, anything else as text. */
export const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * What a client may read of a failure: a typed error's own message (written by the gateway), a store
 * outage as "<store> is unavailable", anything else as a bare "a store failed" (the rest is logged).
 */
function publicReason(cause: unknown): string {
  if (typeof cause === "string") return cause; // the gateway's own sentence
  const typed = typedError(cause);
  return typed instanceof GraphQLError ? typed.message : "a store failed";
}

/** gRPC status codes of a server that cannot be reached or did not answer in time (UNAVAILABLE, DEADLINE_EXCEEDED). */
const GRPC_OUTAGE_CODES = new Set([4, 14]);

/**
 * A store driver's connection failure as a typed error, so no operation fails with a masked error
 * only because a store did not answer (applied by src/plugins/errors.ts). Anything else (a bug)
 * stays masked and logged.
 */
export function typedError(error: unknown): unknown {
  if (error instanceof GraphQLError || !(error instanceof Error)) return error;
  if (/^Mongo(Network|ServerSelection|NetworkTimeout|NotConnected|TopologyClosed)Error$/.test(error.name))
    return new UpstreamUnavailable("mongo", error.message);
  const code = (error as { code?: unknown }).code;
  if (
    (typeof code === "number" && GRPC_OUTAGE_CODES.has(code)) ||
    /\b(14 UNAVAILABLE|4 DEADLINE_EXCEEDED)\b/.test(error.message)
  )
    return new UpstreamUnavailable("milvus", error.message);
  if (
    error.name === "MaxRetriesPerRequestError" ||
    /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|Connection is closed|Command timed out/.test(
      error.message,
    )
  ) {
    return new UpstreamUnavailable("store", error.message);
  }
  return error;
}

// Expected failures, each a GraphQLError with `extensions.code` (DESIGN.md decision 9). Anything
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

/** A store or the model server could not answer: only the fields that need it fail. */
export class UpstreamUnavailable extends GraphQLError {
  constructor(readonly store: string, reason: string) {
    super(`${store} is unavailable: ${reason}`, { extensions: { code: "UPSTREAM_UNAVAILABLE", store } });
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
 * what is left stays findable: running the same mutation again finishes the job.
 */
export class CascadeIncomplete extends GraphQLError {
  constructor(readonly what: string, readonly remaining: string[], reason: string) {
    super(`${what} is incomplete (${reason}); left: ${remaining.join(", ")}. Run the same mutation again to finish it.`, {
      extensions: { code: "CASCADE_INCOMPLETE", remaining, retryable: true },
    });
  }
}

/**
 * A store driver's connection failure as a typed error, so a mutation never fails with a masked
 * error only because Mongo or Redis did not answer. Anything else (a bug) stays masked and logged.
 */
export function typedError(error: unknown): unknown {
  if (error instanceof GraphQLError || !(error instanceof Error)) return error;
  if (/^Mongo(Network|ServerSelection|NetworkTimeout|NotConnected|TopologyClosed)Error$/.test(error.name)) return new UpstreamUnavailable("mongo", error.message);
  if (error.name === "MaxRetriesPerRequestError" || /ECONNREFUSED|ETIMEDOUT|Connection is closed|Command timed out/.test(error.message)) {
    return new UpstreamUnavailable("store", error.message);
  }
  return error;
}

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

/** A request-safety limit (depth, aliases, cost, tokens, document or body size) was exceeded. */
export class LimitExceeded extends GraphQLError {
  constructor(readonly limit: string, readonly value: number, readonly max: number, unit = "") {
    super(`${limit} ${value}${unit} exceeds the limit of ${max}${unit}`, {
      extensions: { code: "LIMIT_EXCEEDED", limit, value, max },
    });
  }
}

/** Too many operations from one user (or one address) in the current window. */
export class RateLimited extends GraphQLError {
  constructor(readonly subject: "user" | "ip", count: number, max: number, windowMs: number, retryAfterMs: number) {
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

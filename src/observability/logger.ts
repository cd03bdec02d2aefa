// Structured JSON logs: one pino logger per app, created in buildApp (tests pass a destination to
// capture the output). Every operation and subscription logs with its request id. Every log object
// and message goes through src/lib/redact.ts first, so no secret (an API key inside a document an
// error quotes, a token, a store password in a URL) is ever written.
import { destination as pinoDestination, pino, type DestinationStream, type Logger, type LoggerOptions } from "pino";
import type { Config } from "../config.js";
import { redactText, redactValue } from "../lib/redact.js";

export type { Logger };

const redactingOptions: Pick<LoggerOptions, "formatters" | "hooks"> = {
  formatters: { log: (object) => redactValue(object) as Record<string, unknown> },
  hooks: {
    logMethod(args, method) {
      method.apply(
        this,
        args.map((arg) => (typeof arg === "string" ? redactText(arg) : arg)) as Parameters<typeof method>,
      );
    },
  },
};

export function createLogger(config: Pick<Config, "logLevel">, destination?: DestinationStream): Logger {
  const options = { level: config.logLevel, base: { service: "layra-graphql-gateway" }, ...redactingOptions };
  // Asynchronous writes to stdout: a request never waits on a blocking write of its log line
  // (pino's sync default costs a write system call per line); buildApp's stop() flushes.
  return pino(options, destination ?? pinoDestination({ dest: 1, sync: false }));
}

/** Yoga's own logger interface on top of pino. */
export function yogaLogger(logger: Logger) {
  const forward =
    (level: "debug" | "info" | "warn" | "error") =>
    (...args: unknown[]) => {
      const [first, ...rest] = args;
      if (first instanceof Error) logger[level]({ err: first }, first.message);
      else logger[level]({ args: rest.length > 0 ? rest : undefined }, String(first));
    };
  return { debug: forward("debug"), info: forward("info"), warn: forward("warn"), error: forward("error") };
}

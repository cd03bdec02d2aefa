// Structured JSON logs: one pino logger per app, created in buildApp (tests pass their own to
// capture the output). Every operation and subscription logs with its request id.
import { destination as pinoDestination, pino, type DestinationStream, type Logger } from "pino";
import type { Config } from "../config.js";

export type { Logger };

export function createLogger(config: Config, destination?: DestinationStream): Logger {
  const options = { level: config.logLevel, base: { service: "layra-graphql-gateway" } };
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

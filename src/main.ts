// The production entry (`node dist/main.js`): read the configuration, build the gateway, serve it,
// and on SIGTERM or SIGINT stop cleanly (close the listener and WebSocket clients, then the stores)
// and exit 0. The local development start-up (a stack of real servers and demo data) is dev/start.ts.
// A start-up failure is one line per problem on stderr, with secrets redacted, and exit code 1.
import { buildApp, type App } from "./app.js";
import { loadConfigOrExit } from "./config.js";
import { redactText } from "./lib/redact.js";
import { errorMessage } from "./errors.js";

// A container runtime kills the process after its own grace period anyway; exiting first with a
// non-zero code says in the log that the stop did not finish. Running answers get ASK_DRAIN_MS on top.
const STOP_DEADLINE_MS = 20_000;

const config = loadConfigOrExit();
let started: App | undefined;
try {
  started = buildApp(config);
  const url = await started.start();
  started.logger.info({ url: `${url}/graphql`, env: config.env }, "LAYRA GraphQL gateway listening");
} catch (error) {
  console.error(`start-up failed: ${redactText(errorMessage(error))}`);
  await started?.stop().catch(() => undefined);
  process.exit(1);
}
const app = started;

const shutdown = async (signal: NodeJS.Signals) => {
  app.logger.info({ signal }, "stopping");
  setTimeout(() => {
    app.logger.error({ signal, deadlineMs: config.ask.drainMs + STOP_DEADLINE_MS }, "stop did not finish in time");
    process.exit(1);
  }, config.ask.drainMs + STOP_DEADLINE_MS).unref();
  try {
    await app.stop();
  } catch (error) {
    app.logger.error({ err: error }, "stop failed");
    process.exit(1);
  }
  app.logger.info({ signal }, "stopped");
  process.exit(0);
};
process.once("SIGINT", (signal) => void shutdown(signal));
process.once("SIGTERM", (signal) => void shutdown(signal));

// The production entry: read the configuration, build the gateway, serve it, stop cleanly on a
// signal. The local development start-up (a stack of real servers and demo data) is dev/start.ts.
// A start-up failure is one line on stderr, with secrets redacted, and exit code 1.
import { buildApp } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";
import { redactText } from "./lib/redact.js";

let app;
try {
  const config = loadConfig(process.env);
  app = buildApp(config);
  const url = await app.start();
  console.log(`LAYRA GraphQL gateway on ${url}/graphql (${config.env})`);
} catch (error) {
  const message =
    error instanceof ConfigError
      ? error.message
      : `start-up failed: ${redactText(error instanceof Error ? error.message : String(error))}`;
  console.error(message);
  await app?.stop().catch(() => undefined);
  process.exit(1);
}

const shutdown = async () => {
  await app.stop();
  process.exit(0);
};
process.once("SIGINT", () => void shutdown());
process.once("SIGTERM", () => void shutdown());

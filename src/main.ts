// The production entry: read the configuration, build the gateway, serve it, stop cleanly on a
// signal. The local development start-up (a stack of real servers and demo data) is dev/start.ts.
// A start-up failure is one line per problem on stderr, with secrets redacted, and exit code 1.
import { buildApp, type App } from "./app.js";
import { loadConfigOrExit } from "./config.js";
import { redactText } from "./lib/redact.js";

const config = loadConfigOrExit();
let app: App | undefined;
try {
  app = buildApp(config);
  const url = await app.start();
  console.log(`LAYRA GraphQL gateway on ${url}/graphql (${config.env})`);
} catch (error) {
  console.error(`start-up failed: ${redactText(error instanceof Error ? error.message : String(error))}`);
  await app?.stop().catch(() => undefined);
  process.exit(1);
}

const shutdown = async () => {
  await app?.stop();
  process.exit(0);
};
process.once("SIGINT", () => void shutdown());
process.once("SIGTERM", () => void shutdown());

// The production entry: read the configuration, build the gateway, serve it, stop cleanly on a
// signal. The local development start-up (a stack of real servers and demo data) is dev/start.ts.
import { buildApp } from "./app.js";
import { loadConfigOrExit } from "./config.js";

const config = loadConfigOrExit();
const app = buildApp(config);
const url = await app.start();
console.log(`LAYRA GraphQL gateway on ${url}/graphql (${config.env})`);

const shutdown = async () => {
  await app.stop();
  process.exit(0);
};
process.once("SIGINT", () => void shutdown());
process.once("SIGTERM", () => void shutdown());

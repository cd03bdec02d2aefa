// `npm start`: with no store configured in the environment, bring up the local stack of real
// servers, seed LAYRA-shaped demo data and print a token; with stores configured, start the
// gateway against them exactly as the production entry (src/main.ts) does.
import { buildApp } from "../src/app.js";
import { ConfigError, loadConfig } from "../src/config.js";
import { startLocalStack } from "./local.js";

const STORE_VARIABLES = ["MONGODB_URL", "MILVUS_URI", "REDIS_URL", "MINIO_URL", "MODEL_SERVER_URL"];

const usesLocalStack = !STORE_VARIABLES.some((name) => process.env[name]);
const local = usesLocalStack ? await startLocalStack() : null;
let config;
try {
  config = loadConfig({ ...process.env, ...local?.env });
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  await local?.close();
  process.exit(1);
}
const app = buildApp(config);
const url = await app.start();
console.log(`LAYRA GraphQL gateway on ${url}/graphql (${config.env})`);
if (local) await local.announce(app);

const shutdown = async () => {
  await app.stop();
  await local?.close();
  process.exit(0);
};
process.once("SIGINT", () => void shutdown());
process.once("SIGTERM", () => void shutdown());

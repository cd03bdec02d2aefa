// Starts the gateway. With no store configured in the environment it first brings up the local
// stack of real servers and seeds LAYRA-shaped demo data (scripts/local.ts).
import { loadConfig, ConfigError } from "./config.js";
import { buildApp } from "./app.js";

const STORE_VARIABLES = ["MONGODB_URL", "MILVUS_URI", "REDIS_URL", "MINIO_URL", "MODEL_SERVER_URL"];

async function main(): Promise<void> {
  const usesLocalStack = !STORE_VARIABLES.some((name) => process.env[name]);
  const local = usesLocalStack ? await import("../scripts/local.js").then((m) => m.startLocalStack()) : null;
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
}

await main();

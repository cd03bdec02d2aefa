// The embedded default for `npm start` with no store configured: install and start the local stack
// of real servers and one ingestion worker; seed a small LAYRA-shaped demo data set and mint a
// bearer token for it.
import { execFileSync } from "node:child_process";
import type { Config } from "../src/config.js";
import { mintToken } from "../src/resolvers/auth.js";
import type { Stores } from "../src/stores/index.js";
import { buildWorker, type Worker } from "../src/worker-app.js";
import { LocalStack } from "./stack/stack.js";
import { seedDemo } from "./seed-demo.js";

export const DEMO_USER = "demo";
export const DEMO_TOKEN_TTL_SECONDS = 24 * 3600;

export async function startLocalStack() {
  execFileSync("bash", [new URL("./stack/install.sh", import.meta.url).pathname], { stdio: "inherit" });
  const stack = await LocalStack.start();
  console.log(`local stack up in ${stack.root}`);
  let worker: Worker | null = null;
  return {
    root: stack.root,
    env: { ...stack.env, SECRET_KEY: "local-stack-only-secret", NODE_ENV: "development" } as Record<string, string>,
    close: async () => {
      await worker?.stop();
      await stack.close();
    },
    /** Starts the worker, seeds the demo user's data and returns a token for it, valid DEMO_TOKEN_TTL_SECONDS. */
    seed: async (config: Config, stores: Stores) => {
      // One ingestion worker beside the gateway, so uploads from GraphiQL or web/ are ingested at once.
      await stores.kafka.ensureTopic(config.kafka.topic, 4);
      worker = buildWorker({ ...config, ingest: { ...config.ingest, workerPort: 0 } });
      await worker.start();
      await seedDemo(stores, stack.env.MODEL_SERVER_URL, stack.env.CHAT_MODEL_URL);
      return mintToken(config, stores, DEMO_USER, DEMO_TOKEN_TTL_SECONDS);
    },
  };
}

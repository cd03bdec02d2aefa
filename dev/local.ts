// The embedded default for `npm start` with no store configured: install and start the local stack
// of real servers and one ingestion worker; seed a small LAYRA-shaped demo data set and mint a
// bearer token for it.
import { execFileSync } from "node:child_process";
import type { Config } from "../src/config.js";
import type { Logger } from "../src/observability/logger.js";
import { mintToken } from "../src/resolvers/auth.js";
import type { Stores } from "../src/stores/index.js";
import { buildWorker, type Worker } from "../src/worker-app.js";
import { LocalStack } from "./stack/stack.js";
import { DEMO_UPLOADS, seedDemo } from "./seed-demo.js";

export const DEMO_USER = "demo";
export const DEMO_TOKEN_TTL_SECONDS = 24 * 3600;

export async function startLocalStack() {
  execFileSync("bash", [new URL("./stack/install.sh", import.meta.url).pathname, "start"], { stdio: "inherit" });
  const stack = await LocalStack.start();
  console.log(`local stack up in ${stack.root}`);
  let worker: Worker | null = null;
  // A MODEL_SERVER_URL of your own (LAYRA's ColQwen server) replaces the stack's lexical stand-in.
  const modelUrl = process.env.MODEL_SERVER_URL;
  return {
    root: stack.root,
    standInModel: !modelUrl,
    env: {
      ...stack.env,
      ...(modelUrl ? { MODEL_SERVER_URL: modelUrl } : {}),
      SECRET_KEY: "local-stack-only-secret",
      NODE_ENV: "development",
    } as Record<string, string>,
    close: async () => {
      await worker?.stop();
      await stack.close();
    },
    /** Starts the worker, seeds the demo user's data; answers a token for it (valid DEMO_TOKEN_TTL_SECONDS) and what GraphiQL's tabs run against. */
    seed: async (config: Config, stores: Stores, logger?: Logger) => {
      // One ingestion worker beside the gateway, so uploads from GraphiQL or web/ are ingested at once.
      await stores.kafka.ensureTopic(config.kafka.topic, 4);
      worker = buildWorker({ ...config, ingest: { ...config.ingest, workerPort: 0 } }, { logger });
      await worker.start();
      const started = Date.now();
      console.log(`demo data: ingesting ${DEMO_UPLOADS} through the worker, as an upload would`);
      const starterVariables = await seedDemo(stores, config.model.url, stack.env.CHAT_MODEL_URL);
      console.log(`demo data: ingested in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      return { token: await mintToken(config, stores, DEMO_USER, DEMO_TOKEN_TTL_SECONDS), starterVariables };
    },
  };
}

// The embedded default for `npm start` with no store configured: install and start the local stack
// of real servers, then seed a small LAYRA-shaped demo data set and print a bearer token for it.
import { execFileSync } from "node:child_process";
import type { App } from "../src/app.js";
import { mintToken } from "../src/domain/auth.js";
import { buildWorker, type Worker } from "../src/worker-app.js";
import { LocalStack } from "./stack/stack.js";
import { seedDemo } from "./seed-demo.js";

export async function startLocalStack() {
  execFileSync("bash", [new URL("./stack/install.sh", import.meta.url).pathname], { stdio: "inherit" });
  const stack = await LocalStack.start();
  console.log(`local stack up in ${stack.root}`);
  let worker: Worker | null = null;
  return {
    env: { ...stack.env, SECRET_KEY: "local-stack-only-secret", NODE_ENV: "development" },
    close: async () => {
      await worker?.stop();
      await stack.close();
    },
    announce: async (app: App) => {
      // One ingestion worker beside the gateway, so uploads from GraphiQL are ingested at once.
      await app.stores.kafka.ensureTopic(app.config.kafka.topic, 4);
      worker = buildWorker({ ...app.config, ingest: { ...app.config.ingest, workerPort: 0 } });
      console.log(`ingestion worker metrics on ${await worker.start()}`);
      await seedDemo(app.stores, stack.env.MODEL_SERVER_URL);
      const token = await mintToken(app.config, app.stores, "demo", 24 * 3600);
      console.log(`demo user "demo" seeded; send this header from GraphiQL:\n  {"Authorization": "Bearer ${token}"}`);
    },
  };
}

// The embedded default for `npm start` with no store configured: install and start the local stack
// of real servers; seed a small LAYRA-shaped demo data set and mint a bearer token for it.
import { execFileSync } from "node:child_process";
import type { Config } from "../src/config.js";
import { mintToken } from "../src/domain/auth.js";
import type { Stores } from "../src/stores/index.js";
import { LocalStack } from "./stack/stack.js";
import { seedDemo } from "./seed-demo.js";

export const DEMO_USER = "demo";
export const DEMO_TOKEN_TTL_SECONDS = 24 * 3600;

export async function startLocalStack() {
  execFileSync("bash", [new URL("./stack/install.sh", import.meta.url).pathname], { stdio: "inherit" });
  const stack = await LocalStack.start();
  return {
    root: stack.root,
    env: { ...stack.env, SECRET_KEY: "local-stack-only-secret", NODE_ENV: "development" } as Record<string, string>,
    close: () => stack.close(),
    /** Seeds the demo user's data and returns a token for it, valid DEMO_TOKEN_TTL_SECONDS. */
    seed: async (config: Config, stores: Stores) => {
      await seedDemo(stores, stack.env.MODEL_SERVER_URL);
      return mintToken(config, stores, DEMO_USER, DEMO_TOKEN_TTL_SECONDS);
    },
  };
}

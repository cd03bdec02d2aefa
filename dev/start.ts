// `npm start`: with no store configured in the environment, bring up the local stack of real
// servers, seed LAYRA-shaped demo data and print a token; with stores configured, start the
// gateway against them exactly as the production entry (src/main.ts) does.
//
// Whatever happens, nothing outlives this process: SIGINT, SIGTERM and SIGHUP are handled from the
// first line (npm passes them on), and stop what has been started so far, servers of a stack that is
// still starting included; a start-up failure prints one line, stops the same and exits 1.
import type { App } from "../src/app.js";
import { buildApp } from "../src/app.js";
import { ConfigError, loadConfig } from "../src/config.js";
import { redactText } from "../src/lib/redact.js";
import { startLocalStack } from "./local.js";
import { LocalStack } from "./stack/stack.js";

const STORE_VARIABLES = ["MONGODB_URL", "MILVUS_URI", "REDIS_URL", "MINIO_URL", "MODEL_SERVER_URL"];

let app: App | null = null;
let local: Awaited<ReturnType<typeof startLocalStack>> | null = null;
let stopping = false;

async function stopEverything(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    await app?.stop().catch(() => undefined);
    await local?.close().catch(() => undefined);
    await LocalStack.closeAll().catch(() => undefined);
    process.exit(code);
  }
  return new Promise<never>(() => undefined);
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(signal, () => void stopEverything(0));
// npm runs this as its direct child (`node --import tsx`, no wrapper process that could swallow a
// signal); should npm itself die without passing one on, the parent changes and everything stops.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) void stopEverything(0);
}, 1_000).unref();

try {
  const usesLocalStack = !STORE_VARIABLES.some((name) => process.env[name]);
  local = usesLocalStack ? await startLocalStack() : null;
  const config = loadConfig({ ...process.env, ...local?.env });
  app = buildApp(config);
  const url = await app.start();
  console.log(`LAYRA GraphQL gateway on ${url}/graphql (${config.env})`);
  if (local) await local.announce(app);
} catch (error) {
  const message =
    error instanceof ConfigError
      ? error.message
      : `npm start failed: ${redactText(error instanceof Error ? error.message : String(error)).split("\n")[0]}`;
  console.error(message);
  await stopEverything(1);
}

// `npm start`: with no store configured (in the environment or in `.env`), bring up the local stack
// of real servers, seed LAYRA-shaped demo data and open GraphiQL with the demo user's token; with
// stores configured, start the gateway against them exactly as the production entry (src/main.ts) does.
//
// Whatever happens, nothing outlives this process: SIGINT, SIGTERM and SIGHUP are handled from the
// first line and stop what has been started so far (servers of a stack that is still starting
// included); a start-up failure prints one line, stops the same and exits 1.
import { join } from "node:path";
import { destination } from "pino";
import { buildApp, type App } from "../src/app.js";
import { ConfigError, loadConfig } from "../src/config.js";
import { redactText } from "../src/lib/redact.js";
import { createLogger } from "../src/observability/logger.js";
import { createStores } from "../src/stores/index.js";
import { DOT_ENV, loadEnvFiles, LOCAL_STACK_ENV, removeLocalStackEnv, writeLocalStackEnv } from "./env-files.js";
import { DEMO_TOKEN_TTL_SECONDS, DEMO_USER, startLocalStack } from "./local.js";
import { LocalStack } from "./stack/stack.js";

const STORE_VARIABLES = ["MONGODB_URL", "MILVUS_URI", "REDIS_URL", "MINIO_URL", "MODEL_SERVER_URL"];

let app: App | null = null;
let local: Awaited<ReturnType<typeof startLocalStack>> | null = null;
let stopping = false;

async function stopEverything(code: number, reason?: string): Promise<never> {
  if (!stopping) {
    stopping = true;
    if (reason) console.log(`${reason}: stopping the gateway${local ? ", the worker and the local stack" : ""}`);
    removeLocalStackEnv();
    await app?.stop().catch(() => undefined);
    await local?.close().catch(() => undefined);
    await LocalStack.closeAll().catch(() => undefined);
    if (reason) console.log("stopped");
    process.exit(code);
  }
  return new Promise<never>(() => undefined);
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const)
  process.once(signal, () => void stopEverything(0, signal));
// The start script `exec`s node, so npm's direct child is this process and npm passes on the signal
// it gets (a shell in between would swallow SIGINT sent to npm's PID alone). Should npm die without
// passing one on, the parent changes and everything stops.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) void stopEverything(0, "npm exited");
}, 1_000).unref();

try {
  loadEnvFiles([DOT_ENV]);
  // A file left by a start that was killed points at servers that are gone.
  removeLocalStackEnv();
  // MODEL_SERVER_URL alone keeps the local stack: LAYRA's ColQwen server in place of the lexical stand-in.
  const usesLocalStack = !STORE_VARIABLES.some((name) => name !== "MODEL_SERVER_URL" && process.env[name]);
  local = usesLocalStack ? await startLocalStack() : null;
  const config = loadConfig({ ...process.env, ...local?.env });
  const stores = createStores(config);
  // On the local stack the terminal is for the banner below: the gateway's and worker's JSON logs go to a
  // file, started afresh each time (git-ignored); against configured stores they stay on stdout as in production.
  const logFile = local ? join(process.cwd(), "layra-dev.log") : null;
  const logger = logFile ? createLogger(config, destination({ dest: logFile, append: false, sync: false })) : undefined;
  const demo = local ? await local.seed(config, stores, logger) : null;
  const token = demo?.token;
  app = buildApp(config, stores, {
    logger,
    ...(demo
      ? { graphiql: { headers: { Authorization: `Bearer ${demo.token}` }, starterVariables: demo.starterVariables } }
      : {}),
  });
  const url = await app.start();
  if (local) writeLocalStackEnv(local.env);

  const lines = [`LAYRA GraphQL gateway on ${url}/graphql (${config.env})`];
  if (config.introspection) lines.push(`  GraphiQL     ${url}/graphql`);
  if (logFile) lines.push(`  logs         ${logFile} (JSON, one line a request: tail -f it)`);
  if (local && token) {
    const until = new Date(Date.now() + DEMO_TOKEN_TTL_SECONDS * 1000).toISOString().slice(0, 16);
    const redisPort = new URL(local.env.REDIS_URL!).port;
    lines.push(
      `  demo user    "${DEMO_USER}": two knowledge bases, files, a conversation, a workflow`,
      `  token        valid ${DEMO_TOKEN_TTL_SECONDS / 3600} h (until ${until} UTC), already in GraphiQL's headers:`,
      `               {"Authorization": "Bearer ${token}"}`,
      ...(local.standInModel
        ? [
            `  search       by words only: the local model server is a lexical stand-in (it reads each page with OCR);`,
            `               for semantic search put MODEL_SERVER_URL=http://<host>:8005 (LAYRA's ColQwen server) in .env`,
          ]
        : []),
      `  local stack  TEMPORARY data in ${local.root}, deleted when this process stops`,
      ...STORE_VARIABLES.map((name) => `    ${name.padEnd(16)} ${local!.env[name]}`),
      `  chat model   ${local.env.CHAT_MODEL_URL} (the demo user's model: \`ask\` answers offline)`,
      `  ${LOCAL_STACK_ENV.split("/").pop()} holds these settings while it runs, so from another shell:`,
      `    npm run dev:token -- alice       a token for another user`,
      `    npm run maintenance              the operator commands (kb:backup, kb:restore too)`,
      `    redis-cli -p ${redisPort} -n 1 keys 'task:*'   the stores themselves`,
    );
  }
  console.log(lines.join("\n"));
} catch (error) {
  const message =
    error instanceof ConfigError
      ? error.message
      : `npm start failed: ${redactText(error instanceof Error ? error.message : String(error)).split("\n")[0]}`;
  console.error(message);
  await stopEverything(1);
}

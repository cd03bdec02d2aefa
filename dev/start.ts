// `npm start`: with no store configured (in the environment or in `.env`), bring up the local stack
// of real servers, seed LAYRA-shaped demo data and open GraphiQL with the demo user's token; with
// stores configured, start the gateway against them exactly as the production entry (src/main.ts) does.
import { buildApp } from "../src/app.js";
import { ConfigError, loadConfig } from "../src/config.js";
import { createStores } from "../src/stores/index.js";
import { DOT_ENV, loadEnvFiles, LOCAL_STACK_ENV, removeLocalStackEnv, writeLocalStackEnv } from "./env-files.js";
import { DEMO_TOKEN_TTL_SECONDS, DEMO_USER, startLocalStack } from "./local.js";

const STORE_VARIABLES = ["MONGODB_URL", "MILVUS_URI", "REDIS_URL", "MINIO_URL", "MODEL_SERVER_URL"];

loadEnvFiles([DOT_ENV]);
// A file left by a start that was killed points at servers that are gone.
removeLocalStackEnv();
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
const stores = createStores(config);
const token = local ? await local.seed(config, stores) : null;
const app = buildApp(config, stores, token ? { graphiql: { headers: { Authorization: `Bearer ${token}` } } } : {});
const url = await app.start();
if (local) writeLocalStackEnv(local.env);

const lines = [`LAYRA GraphQL gateway on ${url}/graphql (${config.env})`];
if (config.introspection) lines.push(`  GraphiQL     ${url}/graphql`);
if (local && token) {
  const until = new Date(Date.now() + DEMO_TOKEN_TTL_SECONDS * 1000).toISOString().slice(0, 16);
  const redisPort = new URL(local.env.REDIS_URL!).port;
  lines.push(
    `  demo user    "${DEMO_USER}": two knowledge bases, files, a conversation, a workflow`,
    `  token        valid ${DEMO_TOKEN_TTL_SECONDS / 3600} h (until ${until} UTC), already in GraphiQL's headers:`,
    `               {"Authorization": "Bearer ${token}"}`,
    `  local stack  TEMPORARY data in ${local.root}, deleted when this process stops`,
    ...STORE_VARIABLES.map((name) => `    ${name.padEnd(16)} ${local.env[name]}`),
    `  ${LOCAL_STACK_ENV.split("/").pop()} holds these settings while it runs, so from another shell:`,
    `    npm run dev:token -- alice       a token for another user`,
    `    npm run maintenance              the operator commands (kb:backup, kb:restore too)`,
    `    redis-cli -p ${redisPort} -n 1 keys 'task:*'   the stores themselves`,
  );
}
console.log(lines.join("\n"));

const shutdown = async () => {
  removeLocalStackEnv();
  await app.stop();
  await local?.close();
  process.exit(0);
};
process.once("SIGINT", () => void shutdown());
process.once("SIGTERM", () => void shutdown());

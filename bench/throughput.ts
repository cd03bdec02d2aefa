// `npm run bench:throughput`: requests per second of a bare graphql-yoga server answering
// `{ __typename }` against this gateway answering an anonymous `{ __typename }` and an authenticated
// `{ me { username } }`, in one run on one machine. Each server runs alone in its own process
// (bench/throughput-server.ts); the load comes from autocannon in another process (-c 50 -d 10 by
// default: BENCH_CONNECTIONS, BENCH_SECONDS), and each measurement is taken BENCH_ROUNDS times,
// interleaved, keeping the median. The gateway runs as in production: token check and rate limit
// on (a limit too high to refuse anything, so every request pays for the count), info logs to a file.
// Prints `name: value` lines; nothing asserts on time. BENCH_CPU_PROF=dir profiles the gateway.
import { execFile, fork, type ChildProcess } from "node:child_process";
import { openSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { LocalStack } from "../dev/stack/stack.js";
import { buildGateway } from "./built-gateway.js";

const connections = process.env.BENCH_CONNECTIONS ?? "50";
const seconds = process.env.BENCH_SECONDS ?? "10";
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const root = new URL("..", import.meta.url).pathname;

interface Ready {
  type: "ready";
  url: string;
  token?: string;
}

async function startServer(mode: "bare" | "gateway", env: NodeJS.ProcessEnv = {}): Promise<[ChildProcess, Ready]> {
  const log = openSync(join(tmpdir(), `layra-bench-throughput-${mode}.log`), "w");
  const profile =
    process.env.BENCH_CPU_PROF && mode === "gateway"
      ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
      : [];
  const child = fork(join(root, "bench/throughput-server.ts"), [mode], {
    execArgv: ["--import", "tsx", ...profile],
    env: { ...process.env, ...env },
    stdio: ["ignore", log, "inherit", "ipc"],
  });
  const ready = await new Promise<Ready>((resolve, reject) => {
    child.once("message", (message) => resolve(message as Ready));
    child.once("exit", (code) => reject(new Error(`${mode} server exited (${code})`)));
  });
  return [child, ready];
}

async function stopServer(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.send({ type: "stop" });
  await exited;
}

/** autocannon in its own process: POSTs `query` and answers the mean requests per second. */
async function load(url: string, query: string, token?: string): Promise<{ rps: number; non2xx: number }> {
  const args = ["-c", connections, "-d", seconds, "-j", "-m", "POST", "-H", "content-type=application/json"];
  if (token) args.push("-H", `authorization=Bearer ${token}`);
  args.push("-b", JSON.stringify({ query }), `${url}/graphql`);
  const { stdout } = await promisify(execFile)(join(root, "node_modules/.bin/autocannon"), args, {
    maxBuffer: 16 * 2 ** 20,
  });
  const result = JSON.parse(stdout) as { requests: { average: number }; non2xx: number; errors: number };
  return { rps: result.requests.average, non2xx: result.non2xx + result.errors };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

// The gateway's token check and rate limit need Redis; its other stores only need to be there.
buildGateway(); // the gateway child runs the compiled code, as production does
const stack = await LocalStack.start({ only: ["mongo", "redis", "s3", "model"] });
const gatewayEnv = {
  ...stack.env,
  NODE_ENV: "production",
  HOST: "127.0.0.1",
  PORT: "0",
  SECRET_KEY: "bench-secret",
  RATE_LIMIT_POINTS: "10000000",
  RATE_LIMIT_ANONYMOUS_POINTS: "10000000",
  LOG_LEVEL: "info",
};
const results = { bare: [] as number[], anonymous: [] as number[], authenticated: [] as number[] };
let failures = 0;
try {
  const [bare, bareReady] = await startServer("bare");
  const [gateway, gatewayReady] = await startServer("gateway", gatewayEnv);
  try {
    // Untimed warm-up of both (JIT, connection pools).
    await load(bareReady.url, "{ __typename }");
    await load(gatewayReady.url, "{ __typename }");
    for (let round = 0; round < rounds; round++) {
      for (const [name, url, query, token] of [
        ["bare", bareReady.url, "{ __typename }", undefined],
        ["anonymous", gatewayReady.url, "{ __typename }", undefined],
        ["authenticated", gatewayReady.url, "{ me { username } }", gatewayReady.token],
      ] as const) {
        const { rps, non2xx } = await load(url, query, token);
        results[name].push(rps);
        failures += non2xx;
      }
    }
  } finally {
    await stopServer(gateway);
    await stopServer(bare);
  }
} finally {
  await stack.close();
}
const [bare, anonymous, authenticated] = [
  median(results.bare),
  median(results.anonymous),
  median(results.authenticated),
];
console.log(`autocannon -c ${connections} -d ${seconds}, median of ${rounds} interleaved rounds`);
console.log(`bare yoga req/s: ${bare.toFixed(0)}`);
console.log(`gateway anonymous req/s: ${anonymous.toFixed(0)}`);
console.log(`gateway authenticated req/s: ${authenticated.toFixed(0)}`);
console.log(`ratio anonymous: ${(anonymous / bare).toFixed(2)}`);
console.log(`ratio authenticated: ${(authenticated / bare).toFixed(2)}`);
console.log(`non-2xx or failed requests: ${failures}`);

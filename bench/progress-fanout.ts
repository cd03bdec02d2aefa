// `npm run bench:progress`: taskProgress fan-out. A gateway process, a bare server (progress-bare.ts:
// the same job with nothing else, the floor this machine allows), a subscriber process and this writer
// (50 HSET/s round-robin over 100 tasks) on a private redis-server. For 1,000 / 5,000 / 10,000
// subscribers, the gateway's window and then the bare server's, it prints HSET->receipt latency (over
// all deliveries, and per update: its first and its last delivery, whose spread is the fan-out
// itself), the CPU time per delivery of the server and of the subscriber process (on a shared machine
// steadier than latency, and it shows the measuring client is not the limit), Redis commands per
// update (INFO commandstats), the server's memory, what LAYRA's approach (one HGETALL per subscriber
// per second) would cost, and how much the host itself interfered during the window (CPU time it
// stole, how late the writer's timer woke); then per level the p99s, `cpu per delivery ratio:` (the
// gateway's server CPU per delivery over the bare server's) and the heap left after disconnect.
// Usage: npm run bench:progress [-- 1000,5000,10000] ; BENCH_SECONDS (default 10), BENCH_PER_CONNECTION (default 10);
// BENCH_CPU_PROF=dir writes a CPU profile of each measured window, server and subscribers apart;
// BENCH_CLIENT=graphql-ws measures with graphql-ws's client instead of the plain one (progress-subscribers.ts).
import { fork, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { Redis } from "ioredis";
import { LocalStack } from "../dev/stack/stack.js";
import { buildGateway } from "./built-gateway.js";
import { percentile } from "./stats.js";

const levels = (process.argv[2] ?? "1000,5000,10000").split(",").map(Number);
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const perConnection = Number(process.env.BENCH_PER_CONNECTION ?? 10);
const profileDir = process.env.BENCH_CPU_PROF;
const TASKS = 100;
const WRITES_PER_SECOND = 50;

// The measuring process gets a large young generation, so that its own collection pauses (10,000
// subscriptions' worth of received messages) do not show up as delivery latency; the gateway and the
// bare server run with Node's defaults, as in production. BENCH_SERVER_NODE_FLAGS passes flags to
// those two, BENCH_SUBSCRIBER_NODE_FLAGS replaces the measuring process's.
const serverFlags = process.env.BENCH_SERVER_NODE_FLAGS ?? "";
const subscriberFlags = process.env.BENCH_SUBSCRIBER_NODE_FLAGS ?? "--max-semi-space-size=64";
const flags = (text: string) => text.split(" ").filter(Boolean);

function child(script: string, childFlags: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
  return fork(new URL(script, import.meta.url).pathname, [], {
    // BENCH_NODE_FLAGS (e.g. "--trace-gc" or "--cpu-prof") go to both child processes, to find stalls.
    execArgv: [
      "--import",
      "tsx",
      "--expose-gc",
      "--max-old-space-size=4096",
      ...flags(childFlags),
      ...flags(process.env.BENCH_NODE_FLAGS ?? ""),
    ],
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}

function request<T>(process: ChildProcess, message: object | null, reply: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`child exited (${code}) while waiting for ${reply}`));
    const onMessage = (received: { type: string }) => {
      if (received.type !== reply) return;
      process.off("message", onMessage);
      process.off("exit", onExit);
      resolve(received as T);
    };
    process.on("message", onMessage);
    process.once("exit", onExit);
    if (message) process.send(message);
  });
}

async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info("commandstats");
  const calls = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1]!, Number(match[2]));
  return calls;
}

const fmt = (n: number, digits = 1) => n.toFixed(digits);

/** The machine's CPU time so far and the part of it the host stole (/proc/stat, in clock ticks). */
function machineTicks(): { total: number; steal: number } {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user and nice)
  return { total: fields.slice(0, 8).reduce((sum, ticks) => sum + ticks, 0), steal: fields[7] ?? 0 };
}

// The whole stack, idle but for Redis: the gateway's store clients expect their servers to be there.
buildGateway(); // the gateway child runs the compiled code, as production does
const stack = await LocalStack.start();
const env = {
  ...stack.env,
  NODE_ENV: "production",
  HOST: "127.0.0.1",
  PORT: "0",
  SECRET_KEY: "bench-secret",
  STORE_TIMEOUT_MS: "5000",
  PROGRESS_MISSING_KEY_WAIT_MS: "60000",
  // One bench user opens every subscription: this measures fan-out, not the per-user rate limit,
  // and a log line per subscription start would measure stdout.
  RATE_LIMIT_POINTS: "0",
  LOG_LEVEL: "warn",
};
const gateway = child("./progress-gateway.ts", serverFlags, env);
// The bare floor (progress-bare.ts): the same job with nothing but the job, measured in the same run.
const bare = child("./progress-bare.ts", serverFlags, env);
const subscribers = child("./progress-subscribers.ts", subscriberFlags);
const writer = new Redis(stack.env.REDIS_URL, { db: 1 });
const stats = new Redis(stack.env.REDIS_URL, { db: 1 });

type Stats = {
  rssMb: number;
  heapUsedMb: number;
  cpuMs: number;
  counts: { keys: number; listeners: number; mode: string };
};
type Latency = {
  count: number;
  p50: number;
  p99: number;
  max: number;
  cpuMs: number;
  firstP50: number;
  lastP50: number;
  lastP99: number;
};
interface Server {
  name: string;
  process: ChildProcess;
  url: string;
  token: string;
}

const tasks = Array.from(
  { length: TASKS },
  (_, i) => `bench_${String(i).padStart(8, "0")}-0000-4000-8000-000000000000`,
);
let sequence = 0;
let mode = "?";
let client = "?";

/** One measured window: `count` subscriptions to `server`, the writer's updates, then unsubscribed. */
async function measure(
  server: Server,
  count: number,
): Promise<{ latency: Latency; row: string[]; cpuPerDeliveryUs: number; drainedHeapMb: number }> {
  const subscribed = await request<{ ms: number; connections: number; client: string }>(
    subscribers,
    { type: "subscribe", url: server.url, token: server.token, tasks, count, perConnection },
    "subscribed",
  );
  const loaded = await request<Stats>(server.process, { type: "stats" }, "stats");
  if (server.process === gateway) mode = loaded.counts.mode;
  client = subscribed.client;
  // How late the writer's own timer wakes it: the host's stalls, sampled 50 times a second by the
  // one process here that does nearly nothing, so a bad run can be told from a slow gateway.
  let wakeLate: number[] = [];
  const write = async (updates: number) => {
    const started = performance.now();
    for (let i = 0; i < updates; i++) {
      const due = started + (i * 1000) / WRITES_PER_SECOND;
      const wait = due - performance.now();
      if (wait > 0) {
        await new Promise((resolve) => setTimeout(resolve, wait));
        wakeLate.push(performance.now() - due);
      }
      sequence += 1;
      // The stamp is taken just before the HSET is sent; subscribers subtract it on receipt.
      await writer.hset(`task:${tasks[i % TASKS]}`, {
        processed: String(sequence),
        message: `bench ${performance.timeOrigin + performance.now()}`,
      });
    }
  };
  await write(2 * WRITES_PER_SECOND); // warm-up, not measured: lets the subscribe burst's garbage be collected
  await new Promise((resolve) => setTimeout(resolve, 500));
  const profiled = [server.process, subscribers];
  if (profileDir) for (const process of profiled) process.send({ type: "profile-start" });
  const before = await commandCalls(stats);
  const serverCpuBefore = (await request<Stats>(server.process, { type: "cpu" }, "cpu")).cpuMs;
  subscribers.send({ type: "start" });
  const ticksBefore = machineTicks();
  wakeLate = [];
  const updates = seconds * WRITES_PER_SECOND;
  await write(updates);
  const ticksAfter = machineTicks();
  await new Promise((resolve) => setTimeout(resolve, 1000)); // let the last deliveries land
  const after = await commandCalls(stats);
  const serverCpu = (await request<Stats>(server.process, { type: "cpu" }, "cpu")).cpuMs - serverCpuBefore;
  if (profileDir)
    await Promise.all(
      profiled.map((process) => request(process, { type: "profile-stop", dir: profileDir, name: count }, "profiled")),
    );
  const latency = await request<Latency>(subscribers, { type: "stop" }, "latency");
  const delta = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
  const allCommands = [...after.keys()].reduce((sum, name) => sum + delta(name), 0);
  // Not the server's: the writer's HSETs and this script's two INFO calls.
  const serverCommands = allCommands - delta("hset") - 1;
  const expected = updates * (count / TASKS);
  // Still subscribed, after a full collection: what the window's deliveries left behind.
  const afterWindow = await request<Stats>(server.process, { type: "stats" }, "stats");
  await request(subscribers, { type: "unsubscribe" }, "unsubscribed");
  let drained = await request<Stats>(server.process, { type: "stats" }, "stats");
  for (let tries = 0; tries < 50 && drained.counts.listeners > 0; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    drained = await request<Stats>(server.process, { type: "stats" }, "stats");
  }
  const cpuPerDeliveryUs = (serverCpu * 1000) / latency.count;
  const row = [
    server.name,
    String(count),
    `${subscribed.connections}`,
    `${latency.count}/${expected}`,
    fmt(latency.p50),
    fmt(latency.p99),
    fmt(latency.max),
    `${fmt(latency.firstP50)} / ${fmt(latency.lastP50)} / ${fmt(latency.lastP99)}`,
    fmt(cpuPerDeliveryUs, 0),
    fmt((latency.cpuMs * 1000) / latency.count, 0),
    fmt(delta("hgetall") / updates, 2),
    fmt(serverCommands / updates, 2),
    fmt(serverCommands / (updates / WRITES_PER_SECOND)),
    String(count),
    `${fmt(loaded.rssMb)} / ${fmt(loaded.heapUsedMb)}`,
    fmt(afterWindow.heapUsedMb),
    `${fmt(drained.rssMb)} / ${fmt(drained.heapUsedMb)} (keys ${drained.counts.keys}, listeners ${drained.counts.listeners})`,
    fmt(subscribed.ms / 1000),
    `${fmt((100 * (ticksAfter.steal - ticksBefore.steal)) / (ticksAfter.total - ticksBefore.total))} / ${fmt(percentile(wakeLate, 99))} / ${fmt(Math.max(...wakeLate))}`,
  ];
  return { latency, row, cpuPerDeliveryUs, drainedHeapMb: drained.heapUsedMb };
}

try {
  const ready = async (name: string, process: ChildProcess): Promise<Server> => ({
    name,
    process,
    ...(await request<{ url: string; token: string }>(process, null, "ready")),
  });
  const gatewayServer = await ready("gateway", gateway);
  const bareServer = await ready("bare", bare);
  await request(subscribers, null, "ready");
  for (const id of tasks)
    await writer.hset(`task:${id}`, {
      status: "processing",
      total: "1000000",
      processed: "0",
      message: "Initializing file processing...",
    });
  const baseline = await request<Stats>(gateway, { type: "stats" }, "stats");
  console.log(
    `gateway baseline: rss ${fmt(baseline.rssMb)} MB, heap ${fmt(baseline.heapUsedMb)} MB; ${TASKS} tasks, writer ${WRITES_PER_SECOND} HSET/s, ${seconds} s per level and server, ${perConnection} subscriptions per WebSocket`,
  );
  const rows: string[][] = [];
  const summary: string[] = [];
  for (const count of levels) {
    const measured = await measure(gatewayServer, count);
    const floor = await measure(bareServer, count);
    rows.push(measured.row, floor.row);
    summary.push(
      `p99 ms at ${count}, gateway: ${fmt(measured.latency.p99)}`,
      `p99 ms at ${count}, bare: ${fmt(floor.latency.p99)}`,
      `p99 over bare at ${count}: ${fmt(measured.latency.p99 - floor.latency.p99)} ms`,
      // The gateway's own cost: its server CPU per delivery against the bare server's (goal: at most 1.3).
      `cpu per delivery ratio: ${fmt(measured.cpuPerDeliveryUs / floor.cpuPerDeliveryUs, 2)} at ${count} (gateway ${fmt(measured.cpuPerDeliveryUs, 0)} us, bare ${fmt(floor.cpuPerDeliveryUs, 0)} us)`,
      // Goal: back within 10 % of the baseline once every subscriber has left.
      `heap after disconnect over baseline at ${count}: ${fmt((100 * (measured.drainedHeapMb - baseline.heapUsedMb)) / baseline.heapUsedMb)} %`,
    );
  }
  const header = [
    "server",
    "subscribers",
    "sockets",
    "delivered/expected",
    "p50 ms",
    "p99 ms",
    "max ms",
    "per update: first p50 / last p50 / last p99 ms",
    "server CPU us/delivery",
    "subscribers CPU us/delivery",
    "HGETALL/update",
    "server cmds/update",
    "server cmds/s",
    "LAYRA cmds/s",
    "server rss/heap MB (subscribed)",
    "heap MB after window",
    "after disconnect rss/heap MB",
    "subscribe s",
    "host: steal % / writer wakes late p99 / max ms",
  ];
  console.log(`gateway progress mode: ${mode}; measuring client: ${client}`);
  const table = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  for (const row of table) console.log(row.map((cell, column) => cell.padStart(widths[column]!)).join("  "));
  console.log("LAYRA cmds/s: its SSE reader polls HGETALL once per second per subscriber, whatever changes.");
  for (const line of summary) console.log(line);
} finally {
  // A child that died already (the failure being reported) cannot be sent to; the stack still stops.
  if (subscribers.connected) subscribers.send({ type: "exit" });
  for (const server of [gateway, bare]) if (server.connected) server.send({ type: "stop" });
  await new Promise((resolve) => setTimeout(resolve, 500));
  writer.disconnect();
  stats.disconnect();
  await stack.close();
}

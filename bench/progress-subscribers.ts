// Bench child process: graphql-ws subscribers, `perConnection` subscriptions per WebSocket, measuring the
// delay from the writer's HSET (its wall-clock stamp is in `message`) to receipt here.
import type { Client } from "graphql-ws";
import { wsClient, wsSubscribe, type Collected } from "../test/fixtures/subscribers.js";
import { cpuMs } from "./stats.js";
import { startWindowProfile, stopWindowProfile } from "./window-profile.js";

const QUERY = "subscription ($taskId: String!) { taskProgress(taskId: $taskId) { processed message } }";
type Event = { taskProgress: { processed: number; message: string } };

let clients: Client[] = [];
let subs: Collected<Event>[] = [];
let measuring = false;
let latencies: number[] = [];
// Per update (its `processed` sequence number): the first and the last of its deliveries' latencies.
// The first shows the path to the gateway and back; the spread to the last is the fan-out itself.
let byUpdate = new Map<number, { first: number; last: number }>();
let cpuAtStart = 0;
const now = () => performance.timeOrigin + performance.now();

function onResult(result: { data?: Event | null }) {
  if (!measuring) return;
  const match = /^bench (\d+(?:\.\d+)?)$/.exec(result.data?.taskProgress.message ?? "");
  if (!match) return;
  const latency = now() - Number(match[1]);
  latencies.push(latency);
  const update = result.data!.taskProgress.processed;
  const seen = byUpdate.get(update);
  if (seen) {
    seen.first = Math.min(seen.first, latency);
    seen.last = Math.max(seen.last, latency);
  } else byUpdate.set(update, { first: latency, last: latency });
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

process.on(
  "message",
  async (message: {
    type: string;
    url?: string;
    token?: string;
    tasks?: string[];
    count?: number;
    perConnection?: number;
    dir?: string;
    name?: string;
  }) => {
    if (message.type === "profile-start") await startWindowProfile();
    if (message.type === "profile-stop") {
      await stopWindowProfile(message.dir!, `subscribers-${message.name}`);
      process.send!({ type: "profiled" });
    }
    if (message.type === "subscribe") {
      const started = Date.now();
      const { url, token, tasks, count, perConnection } = message as Required<typeof message>;
      for (let i = 0; i < count; i += perConnection) clients.push(wsClient(url, token, { lazy: false }));
      for (let i = 0; i < count; i++) {
        const sub = wsSubscribe<Event>(
          clients[Math.floor(i / perConnection)]!,
          QUERY,
          { taskId: tasks[i % tasks.length] },
          onResult,
        );
        sub.keep = false; // counted, not kept: the measuring process must not be the one that slows down
        subs.push(sub);
        if (i % 500 === 499) await Promise.all(subs.slice(-500).map((sub) => sub.waitFor(1, 120_000)));
      }
      await Promise.all(subs.map((sub) => sub.waitFor(1, 120_000)));
      process.send!({ type: "subscribed", ms: Date.now() - started, connections: clients.length });
    }
    if (message.type === "start") {
      latencies = [];
      byUpdate = new Map();
      cpuAtStart = cpuMs();
      measuring = true;
    }
    if (message.type === "stop") {
      measuring = false;
      const sorted = latencies.sort((a, b) => a - b);
      const updates = [...byUpdate.values()];
      const firsts = updates.map((update) => update.first).sort((a, b) => a - b);
      const lasts = updates.map((update) => update.last).sort((a, b) => a - b);
      process.send!({
        type: "latency",
        count: sorted.length,
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
        max: sorted.at(-1) ?? NaN,
        firstP50: percentile(firsts, 50),
        lastP50: percentile(lasts, 50),
        lastP99: percentile(lasts, 99),
        cpuMs: cpuMs() - cpuAtStart,
      });
    }
    if (message.type === "unsubscribe") {
      subs.forEach((sub) => sub.close());
      await Promise.all(clients.map((client) => client.dispose()));
      subs = [];
      clients = [];
      process.send!({ type: "unsubscribed" });
    }
    if (message.type === "exit") process.exit(0);
  },
);
process.send!({ type: "ready" });

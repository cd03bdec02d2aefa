// Bench child process: `perConnection` subscriptions per WebSocket, measuring the delay from the
// writer's HSET (its wall-clock stamp is in `message`) to receipt here.
//
// The client speaks graphql-transport-ws by hand (connection_init, subscribe, next): it is
// the measuring instrument, and graphql-ws's client machinery (a message validation, an object and a
// few closures per message, about 40 µs a message here) made it busy enough, at 10,000
// subscribers on this 2-core machine, to compete with the gateway it measures. BENCH_CLIENT=graphql-ws
// runs the same subscriptions through graphql-ws's client instead, for comparison.
import WebSocket from "ws";
import type { Client } from "graphql-ws";
import { wsClient, wsSubscribe, type Collected } from "../test/fixtures/subscribers.js";
import { cpuMs } from "./stats.js";
import { startWindowProfile, stopWindowProfile } from "./window-profile.js";

const QUERY = "subscription ($taskId: String!) { taskProgress(taskId: $taskId) { processed message } }";
type Event = { taskProgress: { processed: number; message: string } };
const client = process.env.BENCH_CLIENT === "graphql-ws" ? "graphql-ws" : "plain";

/** One connection's subscriptions: the first result of each counts as "subscribed". */
interface Connection {
  firstResults: Promise<void>;
  close(): Promise<void>;
}

/** graphql-transport-ws by hand: init, then one `subscribe` per task; every `next` goes to onResult. */
function plainConnection(url: string, token: string, tasks: string[]): Connection {
  const socket = new WebSocket(`${url.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws");
  let waiting = tasks.length;
  let subscribed!: () => void;
  let failed!: (error: Error) => void;
  const firstResults = new Promise<void>((resolve, reject) => ((subscribed = resolve), (failed = reject)));
  const seen = new Set<string>();
  socket.on("open", () =>
    socket.send(JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${token}` } })),
  );
  socket.on("message", (data) => {
    const message = JSON.parse(String(data)) as { type: string; id?: string; payload?: unknown };
    if (message.type === "connection_ack")
      tasks.forEach((taskId, id) =>
        socket.send(
          JSON.stringify({ id: String(id), type: "subscribe", payload: { query: QUERY, variables: { taskId } } }),
        ),
      );
    else if (message.type === "next") {
      onResult(message.payload as { data?: Event | null });
      if (!seen.has(message.id!)) {
        seen.add(message.id!);
        if (--waiting === 0) subscribed();
      }
    } else if (message.type !== "pong") failed(new Error(`unexpected message: ${JSON.stringify(message)}`));
  });
  socket.on("error", (error) => failed(error));
  socket.on("close", (code) => failed(new Error(`closed (${code})`)));
  return {
    firstResults,
    close: () =>
      new Promise((resolve) => {
        if (socket.readyState === WebSocket.CLOSED) return resolve();
        socket.once("close", () => resolve());
        socket.close(1000);
      }),
  };
}

/** The same subscriptions through graphql-ws's client (test/fixtures/subscribers.ts). */
function graphqlWsConnection(url: string, token: string, tasks: string[]): Connection {
  const connection: Client = wsClient(url, token, { lazy: false });
  const subs: Collected<Event>[] = tasks.map((taskId) => {
    const sub = wsSubscribe<Event>(connection, QUERY, { taskId }, onResult);
    sub.keep = false; // counted, not kept: the measuring process must not be the one that slows down
    return sub;
  });
  return {
    firstResults: Promise.all(subs.map((sub) => sub.waitFor(1, 120_000))).then(() => undefined),
    close: async () => {
      subs.forEach((sub) => sub.close());
      await connection.dispose();
    },
  };
}

let connections: Connection[] = [];
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
      const connect = client === "plain" ? plainConnection : graphqlWsConnection;
      for (let first = 0; first < count; first += perConnection) {
        const taskIds = Array.from(
          { length: Math.min(perConnection, count - first) },
          (_, i) => tasks[(first + i) % tasks.length]!,
        );
        connections.push(connect(url, token, taskIds));
        // A few hundred subscriptions at a time, as clients arrive: not one burst of 10,000.
        if (connections.length % 50 === 0) await Promise.all(connections.slice(-50).map((c) => c.firstResults));
      }
      await Promise.all(connections.map((c) => c.firstResults));
      process.send!({ type: "subscribed", ms: Date.now() - started, connections: connections.length, client });
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
      await Promise.all(connections.map((c) => c.close()));
      connections = [];
      process.send!({ type: "unsubscribed" });
    }
    if (message.type === "exit") process.exit(0);
  },
);
process.send!({ type: "ready" });

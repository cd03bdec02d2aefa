// Bench child process: the bare floor of progress fan-out, driven over IPC by progress-fanout.ts
// exactly like progress-gateway.ts. It does the job and nothing else, the way a hand-written server
// would: graphql-transport-ws over `ws`, keyspace notifications of `task:*`, one HGETALL per change,
// then `send` of a `next` message to each subscriber of that task. No GraphQL execution, no token,
// no limits, no masking, no metrics. Measured with the same client and writer in the same run, it
// shows what the machine itself allows: the gateway's figures beside it are the gateway's overhead.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "ioredis";
import { WebSocketServer, type WebSocket } from "ws";
import { serveProgressBench } from "./progress-child.js";

const DB = 1; // LAYRA's task hashes (docs/architecture.md)
const redisUrl = process.env.REDIS_URL!;
const reader = new Redis(redisUrl, { db: DB });
const notifications = new Redis(redisUrl, { db: DB });

// The flags the gateway also needs: K (keyspace channel), h (hash commands).
const [, flags] = (await reader.call("CONFIG", "GET", "notify-keyspace-events")) as [string, string];
const missing = [..."Kh"].filter((flag) => !flags.includes(flag)).join("");
if (missing) await reader.call("CONFIG", "SET", "notify-keyspace-events", flags + missing);

/** Per task id, its subscribers: a socket and the operation id the client chose. */
const subscribers = new Map<string, Map<WebSocket, Set<string>>>();

const progress = (hash: Record<string, string>) =>
  JSON.stringify({ data: { taskProgress: { processed: Number(hash.processed), message: hash.message ?? null } } });
const next = (id: string, payload: string) => `{"id":${JSON.stringify(id)},"type":"next","payload":${payload}}`;

await notifications.psubscribe(`__keyspace@${DB}__:task:*`);
notifications.on("pmessage", async (_pattern, channel: string) => {
  const taskId = channel.slice(channel.indexOf(":task:") + ":task:".length);
  if (!subscribers.has(taskId)) return;
  const payload = progress(await reader.hgetall(`task:${taskId}`));
  for (const [socket, ids] of subscribers.get(taskId) ?? []) for (const id of ids) socket.send(next(id, payload));
});

const server = createServer();
const sockets = new WebSocketServer({ server, path: "/graphql", perMessageDeflate: false });
sockets.on("connection", (socket) => {
  const tasks = new Set<string>(); // what this connection subscribed to, to leave on close
  socket.on("message", async (data) => {
    const message = JSON.parse(String(data)) as {
      type: string;
      id?: string;
      payload?: { variables?: { taskId?: string } };
    };
    if (message.type === "connection_init") socket.send('{"type":"connection_ack"}');
    else if (message.type === "subscribe") {
      const taskId = message.payload!.variables!.taskId!;
      const task = subscribers.get(taskId) ?? new Map<WebSocket, Set<string>>();
      subscribers.set(taskId, task);
      task.set(socket, (task.get(socket) ?? new Set()).add(message.id!));
      tasks.add(taskId);
      socket.send(next(message.id!, progress(await reader.hgetall(`task:${taskId}`))));
    }
  });
  socket.on("close", () => {
    for (const taskId of tasks) {
      subscribers.get(taskId)?.delete(socket);
      if (subscribers.get(taskId)?.size === 0) subscribers.delete(taskId);
    }
  });
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));

serveProgressBench({
  name: "bare",
  url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
  token: "",
  counts: () => {
    let listeners = 0;
    for (const task of subscribers.values()) for (const ids of task.values()) listeners += ids.size;
    return { keys: subscribers.size, listeners, mode: "notifications" };
  },
  stop: async () => {
    sockets.clients.forEach((socket) => socket.terminate());
    server.close();
    reader.disconnect();
    notifications.disconnect();
  },
});

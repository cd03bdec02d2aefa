// logout ends the streams already open with that token, over graphql-ws and SSE: subscriptions
// re-check that their token is still registered (every TOKEN_RECHECK_MS and before events), one check
// per token for all of a process's streams of it.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import type { Client } from "graphql-ws";
import { Redis } from "ioredis";
import { sseSubscribe, wsClient, wsSubscribe } from "./fixtures/subscribers.js";
import { eventually, gatewayForFile, privateStack, redisClient, startGateway } from "./helpers.js";

const file = gatewayForFile({ TOKEN_RECHECK_MS: "200" });
const PROGRESS = `subscription($taskId: String!) { taskProgress(taskId: $taskId) { status processed end } }`;
const RECHECK_MS = 200;
const STREAMS = 50;
/** The file gateway's task database, where LAYRA writes progress. */
let taskDb: Redis;

before(async () => {
  taskDb = redisClient((await file.ready).config, "task");
});
after(() => taskDb.disconnect());

test("logout ends open taskProgress streams of that token with UNAUTHENTICATED; other tokens' streams go on", async () => {
  const gw = await file.ready;
  const taskId = `dora_${randomUUID()}`;
  await taskDb.hset(`task:${taskId}`, {
    status: "processing",
    total: "3",
    processed: "0",
    message: "m",
  });
  // Two different tokens of one user (a different expiry makes a different JWT).
  const [token, other] = await Promise.all([gw.token("dora", 3600), gw.token("dora", 3500)]);
  const client = wsClient(gw.url, token);
  const otherClient = wsClient(gw.url, other);
  try {
    const overWs = wsSubscribe(client, PROGRESS, { taskId });
    const overSse = sseSubscribe(gw.url, token, PROGRESS, { taskId });
    const untouched = wsSubscribe(otherClient, PROGRESS, { taskId });
    await Promise.all([overWs.waitFor(1), overSse.waitFor(1), untouched.waitFor(1)]);
    const loggedOut = await gw.query<{ logout: boolean }>("mutation { logout }", { token });
    assert.deepEqual(loggedOut.data, { logout: true });
    await Promise.all([overWs.whenEnded(), overSse.whenEnded()]);
    for (const stream of [overWs, overSse]) {
      const codes = [
        ...stream.results.flatMap((r) => r.errors ?? []),
        ...((Array.isArray(stream.error) ? stream.error : []) as { extensions?: Record<string, unknown> }[]),
      ].map((e) => e.extensions?.code);
      assert.ok(codes.includes("UNAUTHENTICATED"), JSON.stringify([stream.results, stream.error]));
    }
    // The other token's stream is still open and still delivers.
    assert.equal(untouched.ended, false);
    await taskDb.hset(`task:${taskId}`, { processed: "1" });
    await untouched.waitFor(2);
    assert.deepEqual(untouched.results[1], {
      data: { taskProgress: { status: "processing", processed: 1, end: null } },
    });
  } finally {
    await client.dispose();
    await otherClient.dispose();
  }
});

test("streams of one token share one token check per TOKEN_RECHECK_MS; a revoke elsewhere ends them all", async () => {
  await file.ready;
  // A Redis of this test's own, so MONITOR sees only this gateway's commands.
  const redisStack = await privateStack(["redis"]);
  const gw = await startGateway(file.env, {
    TOKEN_RECHECK_MS: String(RECHECK_MS),
    REDIS_URL: redisStack.env.REDIS_URL,
  });
  const monitorClient = new Redis(redisStack.env.REDIS_URL);
  const privateTaskDb = redisClient(gw.config, "task");
  let monitor: Redis | null = null;
  const clients: Client[] = [];
  try {
    const taskId = `erin_${randomUUID()}`;
    await privateTaskDb.hset(`task:${taskId}`, { status: "processing", total: "3", processed: "0" });
    const [token, other] = await Promise.all([gw.token("erin", 3600), gw.token("erin", 3500)]);
    // When the server ran each EXISTS of the token's key (MONITOR's own timestamps, in ms).
    const checks: number[] = [];
    monitor = await monitorClient.monitor();
    monitor.on("monitor", (time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === "exists" && args[1] === `token:${token}`) checks.push(Number(time) * 1000);
    });

    for (let i = 0; i < STREAMS / 10; i++) clients.push(wsClient(gw.url, token));
    const streams = Array.from({ length: STREAMS }, (_, i) =>
      wsSubscribe(clients[i % clients.length]!, PROGRESS, { taskId }),
    );
    await Promise.all(streams.map((stream) => stream.waitFor(1)));
    for (const stream of streams) assert.equal(stream.results[0]!.errors, undefined);

    // A stream of another token, closed by its client: its entry goes once its last stream ends.
    const otherClient = wsClient(gw.url, other);
    clients.push(otherClient);
    const closing = wsSubscribe(otherClient, PROGRESS, { taskId });
    await closing.waitFor(1);
    assert.equal(gw.app.live.tokenChecks.size, 2);
    closing.close();
    await eventually(() => gw.app.live.tokenChecks.size === 1, "the closed stream's token entry to go");

    // Checks start at least RECHECK_MS apart whatever the number of streams; without sharing, each of
    // the STREAMS streams would check on its own. +2: network jitter between the gateway and Redis.
    await eventually(() => checks.length >= 1, "a first token check");
    const from = checks.length;
    await eventually(() => checks.length >= from + 4, "four more token checks");
    const window = checks.slice(from - 1);
    const spanMs = window.at(-1)! - window[0]!;
    assert.ok(window.length - 1 <= spanMs / RECHECK_MS + 2, `${window.length - 1} checks in ${spanMs} ms`);

    // Revoked by another replica (the key deleted directly): every stream ends with UNAUTHENTICATED.
    await gw.app.stores.redis.tokens.revoke(token);
    await Promise.all(streams.map((stream) => stream.whenEnded()));
    for (const stream of streams) {
      const codes = [
        ...stream.results.flatMap((r) => r.errors ?? []),
        ...((Array.isArray(stream.error) ? stream.error : []) as { extensions?: Record<string, unknown> }[]),
      ].map((e) => e.extensions?.code);
      assert.ok(codes.includes("UNAUTHENTICATED"), JSON.stringify([stream.results, stream.error]));
    }
    assert.equal(gw.app.live.tokenChecks.size, 0);
  } finally {
    await Promise.all(clients.map(async (client) => client.dispose()));
    monitor?.disconnect();
    monitorClient.disconnect();
    privateTaskDb.disconnect();
    await gw.close();
    await redisStack.close();
  }
});

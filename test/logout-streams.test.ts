// logout ends the streams already open with that token, over graphql-ws and SSE: subscriptions
// re-check that their token is still registered (every TOKEN_RECHECK_MS and before events).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { sseSubscribe, wsClient, wsSubscribe } from "./fixtures/subscribers.js";
import { gatewayForFile } from "./helpers.js";

const file = gatewayForFile({ TOKEN_RECHECK_MS: "200" });
const PROGRESS = `subscription($taskId: String!) { taskProgress(taskId: $taskId) { status end } }`;

test("logout ends open taskProgress streams of that token with UNAUTHENTICATED; other tokens' streams go on", async () => {
  const gw = await file.ready;
  const taskId = `dora_${randomUUID()}`;
  await gw.app.stores.redis.task.hset(`task:${taskId}`, {
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
    await gw.app.stores.redis.task.hset(`task:${taskId}`, { processed: "1" });
    await untouched.waitFor(2);
  } finally {
    await client.dispose();
    await otherClient.dispose();
  }
});

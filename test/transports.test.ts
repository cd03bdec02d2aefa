// The same authentication over every transport: HTTP (header), SSE (header) and graphql-ws
// (connectionParams), with the graphql-transport-ws subprotocol on /graphql.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createClient, type FormattedExecutionResult } from "graphql-ws";

type ExecutionResult = FormattedExecutionResult<Record<string, unknown>, unknown>;
import WebSocket from "ws";
import { gatewayForFile, redisClient } from "./helpers.js";
import { taskId, uploadSteps } from "./fixtures/layra-task-writer.js";
import { Collected } from "./fixtures/subscribers.js";

const file = gatewayForFile();

async function overWebSocket(query: string, connectionParams: Record<string, unknown>): Promise<ExecutionResult> {
  const client = createClient({
    url: `${file.gateway.url.replace("http", "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams,
    retryAttempts: 0,
  });
  try {
    return await new Promise<ExecutionResult>((resolve, reject) => {
      let result: ExecutionResult | undefined;
      client.subscribe(
        { query },
        { next: (value) => (result = value), error: reject, complete: () => resolve(result!) },
      );
    });
  } finally {
    await client.dispose();
  }
}

test("graphql-ws authenticates with connectionParams.Authorization", async () => {
  const token = await file.gateway.token("wsuser");
  const ok = await overWebSocket("{ me { username } }", { Authorization: `Bearer ${token}` });
  assert.deepEqual(ok.data, { me: { username: "wsuser" } });
  const anonymous = await overWebSocket("{ me { username } }", {});
  assert.equal(anonymous.errors?.[0]?.extensions?.code, "UNAUTHENTICATED");
  const forged = await overWebSocket("{ me { username } }", { Authorization: "Bearer not.a.jwt" });
  assert.equal(forged.errors?.[0]?.extensions?.code, "UNAUTHENTICATED");
  const health = await overWebSocket("{ health { ready } }", {});
  assert.equal(health.errors, undefined, "health is public over WebSocket too");
});

test("SSE answers with the caller's data and checks the header", async () => {
  const token = await file.gateway.token("sseuser");
  const read = async (authorization?: string) => {
    const response = await fetch(`${file.gateway.url}/graphql`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "text/event-stream",
        ...(authorization ? { authorization } : {}),
      },
      body: JSON.stringify({ query: "{ me { username } }" }),
    });
    assert.match(response.headers.get("content-type") ?? "", /text\/event-stream/);
    const text = await response.text();
    const data = text.split("\n").find((line) => line.startsWith("data: {"));
    return JSON.parse(data!.slice("data: ".length)) as ExecutionResult;
  };
  assert.deepEqual((await read(`Bearer ${token}`)).data, { me: { username: "sseuser" } });
  assert.equal((await read()).errors?.[0]?.extensions?.code, "UNAUTHENTICATED");
});

test("a client speaking only the legacy subscriptions-transport-ws protocol is refused", async () => {
  const socket = new WebSocket(`${file.gateway.url.replace("http", "ws")}/graphql`, "graphql-ws");
  let error = "";
  await new Promise<void>((resolve) => {
    socket.on("close", () => resolve());
    socket.on("error", (e) => (error = e.message));
  });
  assert.equal(socket.protocol, "", "no subprotocol was agreed");
  assert.match(error, /subprotocol/i);
});

test("graphql-ws takes the token from the operation's extensions.headers, as GraphiQL sends it", async () => {
  const token = await file.gateway.token("ideuser");
  const client = createClient({
    url: `${file.gateway.url.replace("http", "ws")}/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
  });
  const redis = redisClient(file.gateway.config, "task");
  const id = taskId("ideuser");
  const subscribe = (headers: Record<string, string> | undefined) => {
    const collected = new Collected<{ taskProgress: { status: string | null; processed: number | null } }>();
    collected.close = client.subscribe(
      {
        query: "subscription ($taskId: String!) { taskProgress(taskId: $taskId) { status processed } }",
        variables: { taskId: id },
        extensions: headers ? { headers } : {},
      },
      {
        next: (result) => collected.add(result as never),
        error: (error) => collected.finish(error),
        complete: () => collected.finish(),
      },
    );
    return collected;
  };
  try {
    const steps = uploadSteps(redis, id, [{ name: "a.pdf" }]);
    await steps[0]!.write();
    // One connection without connectionParams: each operation is authenticated by its own headers.
    const withToken = subscribe({ authorization: `Bearer ${token}` });
    await withToken.waitFor(1);
    assert.equal(withToken.results[0]!.errors, undefined, JSON.stringify(withToken.results[0]));
    assert.equal(withToken.results[0]!.data?.taskProgress.status, "processing");
    for (const step of steps.slice(1)) await step.write();
    await withToken.whenEnded();
    assert.equal(withToken.results.at(-1)!.data?.taskProgress.status, "completed");

    const none = subscribe(undefined);
    await none.whenEnded();
    assert.equal(none.results[0]?.data ?? null, null);
    const refused =
      (none.error as { message: string; extensions?: { code?: string } }[] | null) ?? none.results[0]?.errors;
    assert.equal(refused?.[0]?.extensions?.code, "UNAUTHENTICATED", JSON.stringify(none));

    const forged = subscribe({ Authorization: "Bearer not.a.jwt" });
    await forged.whenEnded();
    const forgedErrors = (forged.error as { extensions?: { code?: string } }[] | null) ?? forged.results[0]?.errors;
    assert.equal(forgedErrors?.[0]?.extensions?.code, "UNAUTHENTICATED", JSON.stringify(forged));
  } finally {
    await client.dispose();
    redis.disconnect();
  }
});

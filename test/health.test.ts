// Readiness follows the stores: one server stopped fails only its probe, and the gateway recovers.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { STORE_SERVERS, type LocalStack } from "../dev/stack/stack.js";
import { SignJWT } from "jose";
import {
  eventually,
  privateStack,
  startGateway,
  startGatewayWithoutMongo,
  TEST_SECRET,
  type TestGateway,
} from "./helpers.js";

let stack: LocalStack;
let gateway: TestGateway;
const healthQuery = "{ health { ready stores { store up latencyMs } } }";

before(async () => {
  stack = await privateStack();
  gateway = await startGateway(stack.env);
});
after(async () => {
  await gateway.close();
  await stack.close();
});

type HealthData = { health: { ready: boolean; stores: { store: string; up: boolean; latencyMs: number }[] } };

test("health reports every store up and /health, /readiness answer 200", async () => {
  const result = await gateway.query<HealthData>(healthQuery);
  assert.equal(result.errors, undefined);
  assert.equal(result.data!.health.ready, true);
  assert.deepEqual(
    result.data!.health.stores.map((s) => [s.store, s.up]).sort(),
    STORE_SERVERS.map((s) => [s, true]).sort(),
  );
  assert.equal((await fetch(`${gateway.url}/health`)).status, 200);
  assert.equal((await fetch(`${gateway.url}/readiness`)).status, 200);
});

for (const server of STORE_SERVERS) {
  test(`with ${server} stopped, readiness is 503 and health names only ${server} down; then it recovers`, async () => {
    const token = await gateway.token("alice");
    await stack.stopServer(server);
    try {
      const readiness = await fetch(`${gateway.url}/readiness`);
      assert.equal(readiness.status, 503);
      const body = await readiness.text();
      assert.doesNotMatch(body, /127\.0\.0\.1|localhost|ECONNREFUSED|mongodb:|redis:/, "store names only, no address");
      // One store down fails only the fields that need it: health stays, and so does me.username without Mongo.
      const mixed = await gateway.query<{ health: { ready: boolean }; me: { username: string } | null }>(
        "{ health { ready } me { username knowledgeBases { totalCount } } }",
        { token },
      );
      assert.equal(mixed.data?.health.ready, false, JSON.stringify(mixed));
      if (server === "mongo") assert.equal(mixed.data?.me?.username, "alice", JSON.stringify(mixed));
      for (const error of mixed.errors ?? []) assert.doesNotMatch(error.message, /127\.0\.0\.1|ECONNREFUSED/);
      const result = await gateway.query<HealthData>(healthQuery);
      assert.equal(result.data!.health.ready, false);
      for (const entry of result.data!.health.stores)
        assert.equal(entry.up, entry.store !== server, `${entry.store} up=${entry.up}`);
      assert.equal((await fetch(`${gateway.url}/health`)).status, 200, "liveness does not depend on the stores");
      if (server === "milvus") {
        const created = await gateway.query('mutation { createKnowledgeBase(name: "during the outage") { name } }', {
          token,
        });
        assert.deepEqual(
          created.errors?.map((e) => [e.extensions?.code, e.message]),
          [["UPSTREAM_UNAVAILABLE", "milvus is unavailable"]],
        );
      }
      if (server === "mongo") {
        const me = await gateway.query("{ me { knowledgeBases { totalCount } } }", { token });
        assert.equal(
          me.errors?.[0]?.extensions?.code,
          "UPSTREAM_UNAVAILABLE",
          "a read that needs Mongo fails typed, not masked",
        );
      }
    } finally {
      await stack.startServer(server);
    }
    // Generous: Kafka's JVM alone can take tens of seconds to start on a busy machine.
    await eventually(
      async () => (await fetch(`${gateway.url}/readiness`)).status === 200,
      `the gateway recovers once ${server} is back`,
      120_000,
    );
  });
}

test("the gateway starts with every store down, says so, and becomes ready when they come up", async () => {
  const cold = await privateStack([]);
  const late = await startGatewayWithoutMongo(cold.env);
  try {
    const readiness = await fetch(`${late.url}/readiness`);
    assert.equal(readiness.status, 503);
    const report = (await readiness.json()) as { stores: { store: string; up: boolean }[] };
    assert.deepEqual(
      report.stores.filter((s) => s.up).map((s) => s.store),
      [],
    );
    const health = await late.query<HealthData>("{ health { ready } }");
    assert.equal(health.data?.health.ready, false, "requests are still answered");
    const jwt = await new SignJWT({ sub: "alice", exp: Math.floor(Date.now() / 1000) + 60 })
      .setProtectedHeader({ alg: "HS256" })
      .sign(new TextEncoder().encode(TEST_SECRET));
    const me = await late.query("{ me { username } }", { token: jwt });
    assert.equal(
      me.errors?.[0]?.extensions?.code,
      "UPSTREAM_UNAVAILABLE",
      "a token cannot be checked without Redis: not a 401",
    );
    await Promise.all(STORE_SERVERS.map((server) => cold.startServer(server)));
    await late.app.stores.s3.ensureBucket();
    // Generous, as for the recovery above: every server, Kafka's JVM among them, starts at once.
    let body = "";
    await eventually(
      async () => {
        const response = await fetch(`${late.url}/readiness`);
        body = await response.text();
        return response.status === 200;
      },
      "the gateway becomes ready once every store is up",
      120_000,
    ).catch((error: Error) => assert.fail(`${error.message}: ${body}`));
    // Milvus was down when the gateway started: its client is replaced, and knowledge bases can be created.
    const created = await late.query<{ createKnowledgeBase: { knowledgeBaseId: string } }>(
      'mutation { createKnowledgeBase(name: "after the outage") { knowledgeBaseId } }',
      { token: await late.token("alice") },
    );
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  } finally {
    await late.close();
    await cold.close();
  }
});

test("/readiness under a flood probes the stores once per READINESS_CACHE_MS, one probe in flight", async () => {
  const cached = await startGateway(stack.env, { READINESS_CACHE_MS: "60000" });
  try {
    const probes = async () => {
      const text = await (await fetch(`${cached.url}/metrics`)).text();
      const line = text
        .split("\n")
        .find((l) => l.startsWith('store_call_duration_seconds_count{store="redis",operation="health"'));
      return Number(line?.split(" ").at(-1) ?? 0);
    };
    const statuses = await Promise.all(
      Array.from({ length: 200 }, () => fetch(`${cached.url}/readiness`).then((r) => r.status)),
    );
    assert.deepEqual([...new Set(statuses)], [200]);
    await cached.query("{ health { ready } }");
    assert.equal(await probes(), 1, "200 requests and a health query: one probe");
  } finally {
    await cached.close();
  }
});

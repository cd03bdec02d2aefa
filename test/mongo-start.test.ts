// A gateway whose Mongo is not answering at start: requests fail with the typed unavailable error,
// never with the closed topology a failed first connect leaves behind, and succeed once Mongo is up.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { pino } from "pino";
import { typedError, UpstreamUnavailable } from "../src/errors.js";
import { createMongoStore } from "../src/stores/mongo.js";
import type { LocalStack } from "../dev/stack/stack.js";
import { eventually, privateStack, sharedStackEnv, startGatewayWithoutMongo, testConfig } from "./helpers.js";

let shared: Awaited<ReturnType<typeof sharedStackEnv>>;
let mongoStack: LocalStack;

before(async () => {
  shared = await sharedStackEnv();
  mongoStack = await privateStack(["mongo"]);
  await mongoStack.stopServer("mongo");
});
after(async () => {
  await mongoStack.close();
  await shared.close();
});

test("a store whose first connect fails answers every call with the typed unavailable error, then recovers", async () => {
  const config = testConfig({ ...shared.env, MONGODB_URL: mongoStack.env.MONGODB_URL });
  const mongo = createMongoStore(config);
  try {
    // Calls one after another span several failed connect attempts and the pauses between them,
    // where the driver's client holds the topology the failed attempt closed.
    const failures: unknown[] = [];
    const until = Date.now() + 3 * config.storeTimeoutMs;
    while (Date.now() < until) {
      failures.push(
        await mongo.knowledgeBases.findById("kb").then(
          () => "answered",
          (error: unknown) => error,
        ),
      );
    }
    assert.ok(failures.length >= 2, `${failures.length} calls`);
    const health = await mongo.health();
    assert.equal(health.up, false);
    assert.doesNotMatch(health.error ?? "", /Topology is closed/);
    for (const failure of failures) {
      assert.ok(failure instanceof Error, String(failure));
      assert.notEqual(failure.name, "MongoTopologyClosedError", failure.message);
      assert.doesNotMatch(failure.message, /Topology is closed/);
      assert.ok(typedError(failure) instanceof UpstreamUnavailable, `${failure.name}: ${failure.message}`);
    }
    await mongoStack.startServer("mongo");
    await eventually(
      () =>
        mongo.knowledgeBases.findById("kb").then(
          () => true,
          () => false,
        ),
      "the store reads once Mongo is up",
      60_000,
    );
    assert.equal(await mongo.knowledgeBases.findById("kb"), null);
  } finally {
    await mongo.close();
    await mongoStack.stopServer("mongo");
  }
});

test("a gateway started before its Mongo answers a Mongo field with UPSTREAM_UNAVAILABLE, then the same query succeeds", async () => {
  const lines: { msg?: string; reason?: string }[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const gateway = await startGatewayWithoutMongo(
    { ...shared.env, MONGODB_URL: mongoStack.env.MONGODB_URL },
    {},
    { logger },
  );
  try {
    const token = await gateway.token("alice");
    const query = `{ me { knowledgeBases { totalCount } } }`;
    const until = Date.now() + 3 * gateway.config.storeTimeoutMs;
    let asked = 0;
    while (Date.now() < until) {
      const down = await gateway.query(query, { token });
      asked++;
      assert.equal(down.errors?.[0]?.extensions?.code, "UPSTREAM_UNAVAILABLE", JSON.stringify(down));
      assert.equal(down.errors?.[0]?.extensions?.store, "mongo");
      assert.doesNotMatch(JSON.stringify(down), /Topology/);
    }
    const unavailable = lines.filter((line) => line.msg === "store unavailable");
    assert.ok(unavailable.length >= asked, `${unavailable.length} logged of ${asked}`);
    assert.deepEqual(
      unavailable.filter((line) => /Topology is closed/.test(line.reason ?? "")),
      [],
      "no request met the closed topology",
    );
    await mongoStack.startServer("mongo");
    await eventually(
      async () => (await gateway.query(query, { token })).errors === undefined,
      "the same query succeeds once Mongo is up, without restarting the gateway",
      60_000,
    );
    assert.deepEqual(await gateway.query(query, { token }), {
      status: 200,
      data: { me: { knowledgeBases: { totalCount: 0 } } },
    });
  } finally {
    await gateway.close();
  }
});

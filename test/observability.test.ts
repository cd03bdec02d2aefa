// Error policy, structured logs with request ids, Prometheus metrics and tracing hooks, on real
// gateways. An unexpected error is provoked by breaking one store's health method in the test.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import DataLoader from "dataloader";
import { trace, type Span, type Tracer, type TracerProvider } from "@opentelemetry/api";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createSchema, createYoga } from "graphql-yoga";
import { pino } from "pino";
import { buildApp, type App } from "../src/app.js";
import { UpstreamUnavailable } from "../src/errors.js";
import { observedBatch } from "../src/loaders/observe.js";
import { Metrics } from "../src/observability/metrics.js";
import { runObserved } from "../src/observability/scope.js";
import { createPlugins } from "../src/plugins/index.js";
import { noTracing, type SpanAttributes, type TracingHooks } from "../src/observability/tracing.js";
import { closeStores, createStores } from "../src/stores/index.js";
import { EventChannel } from "../src/live/event-channel.js";
import {
  sharedStackEnv,
  startGateway,
  storeCallCounts,
  testConfig,
  type GraphQLResponse,
  type TestGateway,
} from "./helpers.js";
import { LayraWriter } from "../dev/layra-writer.js";
import { wsClient, wsOperation } from "./ws.js";

let env: Record<string, string>;
let closeStack: () => Promise<void>;
const cleanups: (() => Promise<void>)[] = [];

before(async () => {
  const stack = await sharedStackEnv();
  env = stack.env;
  closeStack = stack.close;
});
after(async () => {
  for (const cleanup of cleanups) await cleanup();
  await closeStack();
});

type LogLine = Record<string, unknown> & { level: number; msg: string; requestId?: string };

function captureLogger() {
  const lines: LogLine[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}

async function post(
  url: string,
  query: string,
  headers: Record<string, string> = {},
): Promise<GraphQLResponse<Record<string, unknown>> & { raw: string }> {
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ query }),
  });
  const raw = await response.text();
  return { status: response.status, raw, ...(JSON.parse(raw) as object) };
}

/** The value of one sample in Prometheus text format (0 when it is absent). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const labelText = match[2] ?? "";
    if (Object.entries(labels).every(([key, value]) => labelText.includes(`${key}="${value}"`)))
      return Number(match[3]);
  }
  return 0;
}

const metricsOf = async (url: string) => {
  const response = await fetch(`${url}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /text\/plain/);
  return response.text();
};

describe("error policy and logs", () => {
  let app: App;
  let url: string;
  let lines: LogLine[];
  let fault: Error | null = null;

  before(async () => {
    const capture = captureLogger();
    lines = capture.lines;
    const config = testConfig(env);
    const stores = createStores(config);
    const realHealth = stores.model.health.bind(stores.model);
    stores.model.health = async () => {
      if (fault) throw fault;
      return realHealth();
    };
    app = buildApp(config, stores, { logger: capture.logger });
    url = await app.start();
    cleanups.push(() => app.stop());
  });

  test("an unexpected error is masked for the client and logged in full with its request id", async () => {
    fault = new Error("probe exploded: secret-detail-42");
    try {
      const response = await post(url, "query Ready { health { ready } }", { "x-request-id": "req-mask-1" });
      assert.equal(response.errors?.length, 1);
      const error = response.errors[0]!;
      assert.equal(error.message, "Unexpected error.");
      assert.deepEqual(error.extensions, { code: "INTERNAL_SERVER_ERROR", requestId: "req-mask-1" });
      assert.deepEqual(error.path, ["health"]);
      assert.doesNotMatch(response.raw, /secret-detail-42|probe exploded|stack/);

      const logged = lines.find((line) => line.requestId === "req-mask-1" && line.level === 50);
      assert.ok(logged, `an error line with the request id in ${JSON.stringify(lines)}`);
      const err = logged.err as { message: string; stack: string };
      assert.equal(err.message, "probe exploded: secret-detail-42");
      assert.match(err.stack, /observability\.test\.ts/);
      assert.deepEqual(logged.path, ["health"]);
    } finally {
      fault = null;
    }
  });

  test("over graphql-ws the masked error carries the subscription's own request id, found in the log", async () => {
    fault = new Error("ws probe exploded");
    try {
      const outcome = await wsOperation(url, { query: "{ health { ready } }" });
      const error = outcome.results[0]!.errors![0]!;
      assert.equal(error.message, "Unexpected error.");
      const requestId = error.extensions?.requestId as string;
      assert.match(requestId, /^[0-9a-f-]{36}$/);
      const logged = lines.find((line) => line.requestId === requestId && line.level === 50);
      assert.equal((logged?.err as { message: string } | undefined)?.message, "ws probe exploded");
      const operation = lines.find((line) => line.requestId === requestId && line.msg === "operation");
      assert.equal(operation?.transport, "ws");
    } finally {
      fault = null;
    }
  });

  test("an expected error (a GraphQLError with a code) reaches the client; an outage's reason only the log", async () => {
    fault = new UpstreamUnavailable("model", "connect ECONNREFUSED 127.0.0.1:40683");
    try {
      const response = await post(url, "{ health { ready } }");
      assert.equal(response.errors![0]!.message, "model is unavailable");
      assert.equal(response.errors![0]!.extensions?.code, "UPSTREAM_UNAVAILABLE");
      assert.ok(lines.some((line) => line.reason === "connect ECONNREFUSED 127.0.0.1:40683"));
    } finally {
      fault = null;
    }
  });

  test("every operation logs one JSON line with its request id, name, outcome and duration", async () => {
    const before = lines.length;
    await post(url, "query Named { __typename }", { "x-request-id": "req-log-1" });
    await post(url, "{ __typename }", { "x-request-id": 'bad id "with quotes" and spaces' });
    const fresh = lines.slice(before).filter((line) => line.msg === "operation");
    assert.equal(fresh.length, 2);
    const [named, anonymous] = fresh;
    assert.equal(named!.requestId, "req-log-1");
    assert.equal(named!.operation, "Named");
    assert.equal(named!.outcome, "success");
    assert.equal(named!.transport, "http");
    assert.equal(typeof named!.durationMs, "number");
    assert.match(anonymous!.requestId!, /^[0-9a-f-]{36}$/, "an unusable X-Request-Id is replaced");
  });

  test("a refused operation is logged with its request id", async () => {
    const before = lines.length;
    await post(url, "{ nope }", { "x-request-id": "req-refused-1" });
    const refused = lines.slice(before).find((line) => line.msg === "operation rejected");
    assert.equal(refused?.requestId, "req-refused-1");
    assert.match(String((refused?.errors as string[])[0]), /Cannot query field "nope"/);
  });
});

describe("metrics", () => {
  let gw: TestGateway;
  let other: TestGateway;

  before(async () => {
    // The model server address points at a closed port, so its health probe fails.
    gw = await startGateway(env, { GRAPHQL_MAX_DEPTH: "2", MODEL_SERVER_URL: "http://127.0.0.1:9" });
    other = await startGateway(env);
    cleanups.push(
      () => gw.close(),
      () => other.close(),
    );
  });

  test("operations by name and outcome, with latency histograms, move when operations run", async () => {
    const start = await metricsOf(gw.url);
    const labels = { operation: "Probe", type: "query", outcome: "success" };
    await gw.query("query Probe { __typename }");
    await gw.query("query Probe { __typename }");
    await gw.query("{ nope }");
    const end = await metricsOf(gw.url);
    assert.equal(
      sample(end, "graphql_operations_total", labels) - sample(start, "graphql_operations_total", labels),
      2,
    );
    assert.equal(
      sample(end, "graphql_operation_duration_seconds_count", labels) -
        sample(start, "graphql_operation_duration_seconds_count", labels),
      2,
    );
    assert.ok(sample(end, "graphql_operation_duration_seconds_sum", labels) > 0);
    assert.equal(
      sample(end, "graphql_rejections_total", { reason: "validation" }) -
        sample(start, "graphql_rejections_total", { reason: "validation" }),
      1,
    );
    // The other app has its own registry.
    assert.equal(sample(await metricsOf(other.url), "graphql_operations_total", labels), 0);
  });

  test("limit rejections are counted by limit", async () => {
    const start = await metricsOf(gw.url);
    const refused = await gw.query("{ health { stores { store } } }");
    assert.equal(refused.errors?.[0]?.extensions?.code, "LIMIT_EXCEEDED");
    const end = await metricsOf(gw.url);
    assert.equal(
      sample(end, "graphql_rejections_total", { reason: "depth" }) -
        sample(start, "graphql_rejections_total", { reason: "depth" }),
      1,
    );
  });

  test("store call latencies and errors per store (health probes, from GraphQL and /readiness)", async () => {
    const start = await metricsOf(gw.url);
    await gw.query("{ health { ready } }");
    await fetch(`${gw.url}/readiness`);
    const end = await metricsOf(gw.url);
    const delta = (name: string, labels: Record<string, string>) =>
      sample(end, name, labels) - sample(start, name, labels);
    for (const store of ["mongo", "milvus", "redis", "s3"]) {
      assert.equal(
        delta("store_call_duration_seconds_count", { store, operation: "health", outcome: "success" }),
        2,
        store,
      );
    }
    assert.equal(
      delta("store_call_duration_seconds_count", { store: "model", operation: "health", outcome: "error" }),
      2,
    );
    assert.equal(delta("store_call_errors_total", { store: "model", operation: "health" }), 2);
    assert.equal(delta("store_call_errors_total", { store: "mongo", operation: "health" }), 0);
  });

  test("open graphql-ws connections are a gauge", async () => {
    assert.equal(sample(await metricsOf(gw.url), "graphql_ws_connections_open"), 0);
    const client = wsClient(gw.url);
    const connected = new Promise<void>((resolve) => client.on("connected", () => resolve()));
    const done = new Promise<void>((resolve, reject) =>
      client.subscribe({ query: "{ __typename }" }, { next: () => undefined, error: reject, complete: resolve }),
    );
    await connected;
    await done;
    assert.equal(sample(await metricsOf(gw.url), "graphql_ws_connections_open"), 1);
    await client.dispose();
    let open = 1;
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && (open = sample(await metricsOf(gw.url), "graphql_ws_connections_open")) !== 0)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(open, 0);
  });

  test("DataLoader batch sizes, through observedBatch inside the app's scope", async () => {
    const loader = new DataLoader<number, number>(observedBatch("double", async (keys) => keys.map((key) => key * 2)));
    const values = await runObserved({ metrics: gw.app.metrics, tracing: noTracing }, () =>
      Promise.all([1, 2, 3].map((key) => loader.load(key))),
    );
    assert.deepEqual(values, [2, 4, 6]);
    const text = await metricsOf(gw.url);
    assert.equal(sample(text, "dataloader_batch_size_count", { loader: "double" }), 1);
    assert.equal(sample(text, "dataloader_batch_size_sum", { loader: "double" }), 3);
  });

  test("the gateway's own loaders report their batches and Mongo calls", async () => {
    const token = await gw.token("metrics");
    const result = await gw.query(
      `{ a: knowledgeBase(knowledgeBaseId: "metrics_1") { name } b: knowledgeBase(knowledgeBaseId: "metrics_2") { name } }`,
      { token },
    );
    assert.equal(result.errors?.[0]?.extensions?.code, "NOT_FOUND");
    const text = await metricsOf(gw.url);
    assert.equal(
      sample(text, "dataloader_batch_size_sum", { loader: "knowledge_bases.knowledge_base_id" }),
      2,
      "two ids, one batch",
    );
    assert.equal(sample(text, "dataloader_batch_size_count", { loader: "knowledge_bases.knowledge_base_id" }), 1);
    assert.ok(
      sample(text, "store_call_duration_seconds_count", {
        store: "mongo",
        operation: "knowledge_bases.findByIds",
        outcome: "success",
      }) >= 1,
    );
  });
});

describe("tracing hooks", () => {
  test("off by default", () => {
    assert.equal(testConfig(env).tracing.enabled, false);
  });

  test("hooks get a span per operation (with its root fields) and per store call", async () => {
    const spans: { name: string; attributes: SpanAttributes; ended: boolean; error?: unknown }[] = [];
    const tracing: TracingHooks = {
      startSpan: (name, attributes) => {
        const span = { name, attributes, ended: false, error: undefined as unknown };
        spans.push(span);
        return { end: (error) => Object.assign(span, { ended: true, error }) };
      },
    };
    const gw = await startGateway(env, {}, { tracing });
    cleanups.push(() => gw.close());
    const result = await gw.query("query Probe { health { ready } }");
    assert.equal(result.errors, undefined);
    const operation = spans.find((span) => span.name === "graphql query Probe");
    assert.ok(operation, JSON.stringify(spans.map((span) => span.name)));
    assert.deepEqual(operation.attributes["graphql.root_fields"], ["health"]);
    assert.equal(operation.ended, true);
    for (const store of ["mongo", "milvus", "redis", "s3", "model"]) {
      const span = spans.find((candidate) => candidate.name === `store ${store} health`);
      assert.ok(span?.ended, store);
    }
  });

  test("TRACING_ENABLED sends the spans to the OpenTelemetry API", async () => {
    const names: string[] = [];
    const span = (name: string): Span => {
      names.push(name);
      const self: Record<string, unknown> = {};
      for (const method of [
        "setAttribute",
        "setAttributes",
        "addEvent",
        "addLink",
        "addLinks",
        "setStatus",
        "updateName",
        "recordException",
        "end",
      ]) {
        self[method] = () => self;
      }
      self.isRecording = () => true;
      self.spanContext = () => ({ traceId: "0".repeat(31) + "1", spanId: "0".repeat(15) + "1", traceFlags: 1 });
      return self as unknown as Span;
    };
    const tracer = { startSpan: (name: string) => span(name), startActiveSpan: () => undefined } as unknown as Tracer;
    const provider: TracerProvider = { getTracer: () => tracer };
    assert.equal(trace.setGlobalTracerProvider(provider), true);
    try {
      const gw = await startGateway(env, { TRACING_ENABLED: "true" });
      cleanups.push(() => gw.close());
      await gw.query("query Traced { __typename }");
      assert.ok(names.includes("graphql query Traced"), JSON.stringify(names));
    } finally {
      trace.disable();
    }
  });
});

// A small schema with a subscription, served by Yoga with the gateway's own plugin list
// (createPlugins), shows the subscription path over SSE with a stream the test controls.
describe("subscriptions", () => {
  test("an open subscription is counted in the gauge and logs its start and end with its request id", async () => {
    const { logger, lines } = captureLogger();
    const config = testConfig(env);
    const stores = createStores(config);
    const metrics = new Metrics();
    let release: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (release = resolve));
    const schema = createSchema({
      typeDefs: "type Query { ok: Boolean } type Subscription { ticks: Int! }",
      resolvers: {
        Subscription: {
          ticks: {
            // One event, then open until the server ends the stream (the client went away).
            subscribe: () => {
              const ticks = new EventChannel<{ ticks: number }>();
              ticks.push({ ticks: 1 });
              ticks.onEnd(() => release());
              return ticks;
            },
          },
        },
      },
    });
    const yoga = createYoga({
      schema,
      plugins: createPlugins(config, { stores, logger, observation: { metrics, tracing: noTracing } }).plugins,
    });
    const server = createServer(yoga);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
    const gauge = async () => sample(await metrics.registry.metrics(), "graphql_subscriptions_open");
    try {
      assert.equal(await gauge(), 0);
      const abort = new AbortController();
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "text/event-stream", "x-request-id": "sub-req-1" },
        body: JSON.stringify({ query: "subscription Ticks { ticks }" }),
        signal: abort.signal,
      });
      const reader = response.body!.getReader();
      let text = "";
      while (!text.includes('"ticks":1')) {
        const chunk = await reader.read();
        if (chunk.done) break;
        text += new TextDecoder().decode(chunk.value);
      }
      assert.match(text, /"ticks":1/, `the first event (status ${response.status})`);
      assert.equal(await gauge(), 1);
      const started = lines.find((line) => line.msg === "subscription started");
      assert.equal(started?.requestId, "sub-req-1");
      assert.equal(started?.operation, "Ticks");

      abort.abort();
      await finished;
      let open = 1;
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline && (open = await gauge()) !== 0) await new Promise((r) => setTimeout(r, 20));
      assert.equal(open, 0);
      assert.equal(lines.find((line) => line.msg === "subscription ended")?.requestId, "sub-req-1");
      const labels = { operation: "Ticks", type: "subscription", outcome: "success" };
      assert.equal(sample(await metrics.registry.metrics(), "graphql_operations_total", labels), 1);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await closeStores(stores);
    }
  });
});

test("with METRICS_TOKEN set, /metrics answers only that bearer token", async () => {
  const token = "a-long-metrics-scrape-token";
  const gw = await startGateway(env, { METRICS_TOKEN: token });
  try {
    assert.equal((await fetch(`${gw.url}/metrics`)).status, 401);
    assert.equal((await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${token}x` } })).status, 401);
    const ok = await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /graphql_operations_total/);
    assert.throws(() => testConfig(env, { METRICS_TOKEN: "short" }), /METRICS_TOKEN: must be at least 16 characters/);
  } finally {
    await gw.close();
  }
});

describe("every store call is observed", () => {
  test("a profile query, a search and mutations show Mongo reads and writes, Milvus search and query, S3 and Redis", async () => {
    // Without the page-vector cache a search always runs Milvus's stage-1 search and stage-2 queries.
    const gw = await startGateway(env, { SEARCH_CACHE_BYTES: "0" });
    cleanups.push(() => gw.close());
    const writer = new LayraWriter(gw.app.stores, gw.config.model.url);
    const token = await gw.token("observed");
    const kb = await writer.createKnowledgeBase("observed", "searched");
    await writer.ingestFile("observed", kb.knowledge_base_id, {
      filename: "a.pdf",
      pages: [{ text: "alpha beta" }, { text: "gamma delta" }],
    });
    const run = async (query: string) => {
      const result = await gw.query<Record<string, unknown>>(query, { token });
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      return result.data!;
    };
    // `first: 0` pages are full (one item past the window exists), so their totals are counted.
    await run(`{ me { username modelConfig { selectedModelId } knowledgeBases(first: 5) { totalCount edges { node { name } } }
      counted: knowledgeBases(first: 0) { totalCount } files(first: 0) { totalCount } conversations(first: 5) { totalCount }
      workflows(first: 5) { totalCount } customNodes { name } } }`);
    const hits = await run(
      `{ searchKnowledgeBase(knowledgeBaseId: ${JSON.stringify(kb.knowledge_base_id)}, query: "alpha", topK: 2) { score } }`,
    );
    assert.equal((hits.searchKnowledgeBase as unknown[]).length, 2);
    const created = await run(`mutation { createKnowledgeBase(name: "made") { id knowledgeBaseId } }`);
    const madeId = (created.createKnowledgeBase as { knowledgeBaseId: string }).knowledgeBaseId;
    await run(`mutation { renameKnowledgeBase(knowledgeBaseId: ${JSON.stringify(madeId)}, name: "renamed") { name } }`);
    await run(`mutation { addModel(input: { modelName: "m", modelUrl: "http://model.invalid/v1" }) { modelId } }`);
    await run(`mutation { deleteKnowledgeBase(knowledgeBaseId: ${JSON.stringify(kb.knowledge_base_id)}) }`);

    const counts = await storeCallCounts(gw.app.metrics);
    const seen = [...counts.keys()].sort();
    const has = (key: string) => assert.ok(counts.has(key), `${key} in ${JSON.stringify(seen)}`);
    // Mongo reads (the profile's lists and loaders) and writes (insert, rename, model config, deletes).
    for (const read of [
      "knowledge_bases.firstPageWithIds",
      "knowledge_bases.count",
      "files.count",
      "model_config.find",
    ])
      has(`mongo ${read}`);
    has("mongo knowledge_bases.findByIds");
    for (const write of ["knowledge_bases.insert", "knowledge_bases.rename", "model_config.addModel"])
      has(`mongo ${write}`);
    for (const write of ["files.deleteByKnowledgeBase", "knowledge_bases.delete"]) has(`mongo ${write}`);
    // Milvus: the search path and the writes.
    for (const call of ["getLoadState", "search", "query", "createCollection", "dropCollection"]) has(`milvus ${call}`);
    has("s3 removeObjects");
    for (const call of ["lock.acquire", "lock.release"]) has(`redis ${call}`);
  });
});

// Yoga's own error masking is off (src/server/yoga.ts, `maskedErrors: false`): the error policy also masks
// what happens outside execution. A Yoga built like the gateway's, with the gateway's plugin list,
// and a fault where the gateway has none to inject: its context factory, and a hook of the pipeline.
describe("errors outside execution", () => {
  async function serve(options: { context?: () => never; plugins?: object[] }) {
    const { logger, lines } = captureLogger();
    const config = testConfig(env);
    const stores = createStores(config);
    const gatewayPlugins = createPlugins(config, {
      stores,
      logger,
      observation: { metrics: new Metrics(), tracing: noTracing },
    });
    const yoga = createYoga({
      schema: createSchema({ typeDefs: "type Query { ok: Boolean }", resolvers: { Query: { ok: () => true } } }),
      plugins: [...gatewayPlugins.plugins, ...(options.plugins ?? [])] as never,
      maskedErrors: false,
      context: options.context,
    });
    const server = createServer(yoga);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await closeStores(stores);
    });
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, lines };
  }

  const secret = "redis://:hunter2@10.1.2.3:6379 refused";

  test("an exception of the context factory reaches the client as Unexpected error., logged in full", async () => {
    const { url, lines } = await serve({
      context: () => {
        throw new Error(secret);
      },
    });
    const response = await post(url, "{ ok }", { "x-request-id": "ctx-fault-1" });
    assert.equal(response.errors?.[0]?.message, "Unexpected error.", response.raw);
    assert.equal(response.errors?.[0]?.extensions?.code, "INTERNAL_SERVER_ERROR");
    assert.doesNotMatch(response.raw, /hunter2|10\.1\.2\.3|refused/);
    const logged = lines.find((line) => line.msg === "unexpected context error (masked for the client)");
    assert.equal((logged?.err as { message?: string } | undefined)?.message?.includes("refused"), true);
  });

  test("an exception thrown by a hook of the HTTP pipeline reaches the client as Unexpected error.", async () => {
    const { url, lines } = await serve({
      plugins: [
        {
          onParams() {
            throw new Error(secret);
          },
        },
      ],
    });
    const response = await post(url, "{ ok }");
    assert.equal(response.errors?.[0]?.message, "Unexpected error.", response.raw);
    assert.equal(response.errors?.[0]?.extensions?.code, "INTERNAL_SERVER_ERROR");
    assert.doesNotMatch(response.raw, /hunter2|10\.1\.2\.3|refused/);
    assert.ok(lines.some((line) => line.msg === "unexpected request error (masked for the client)"));
  });
});

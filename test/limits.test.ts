// Every request-safety limit accepts at its threshold and rejects just above it, saying which limit
// and by how much, over HTTP and over graphql-ws. Each gateway gets small limits so that the
// one public field (`health`) can sit exactly on them.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { before, describe, test } from "node:test";
import SchemaBuilder from "@pothos/core";
import ComplexityPlugin from "@pothos/plugin-complexity";
import RelayPlugin from "@pothos/plugin-relay";
import ScopeAuthPlugin from "@pothos/plugin-scope-auth";
import { parse } from "graphql";
import { loadConfig } from "../src/config.js";
import type { Context } from "../src/context.js";
import { measureComplexity } from "../src/plugins/limits.js";
import { connectionEdgesCost, fieldCost } from "../src/schema/cost.js";
import { listSize } from "../src/schema/lists.js";
import { eventually, gatewaysForFile, uniqueName, type GraphQLResponse, type TestGateway } from "./helpers.js";
import { wsClient, wsOperation } from "./ws.js";

const gateway = gatewaysForFile();

function assertLimit(response: { errors?: GraphQLResponse<unknown>["errors"] }, message: string, limit: string): void {
  const error = response.errors?.find((candidate) => candidate.extensions?.code === "LIMIT_EXCEEDED");
  assert.ok(error, `a LIMIT_EXCEEDED error in ${JSON.stringify(response.errors)}`);
  assert.equal(error.message, message);
  assert.equal(error.extensions?.limit, limit);
}

function assertOk(response: { errors?: unknown; data?: unknown }): void {
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  assert.ok(response.data);
}

test("the limits have defaults and are validated", () => {
  const required = { SECRET_KEY: "s", MINIO_ACCESS_KEY: "a", MINIO_SECRET_KEY: "b" };
  const config = loadConfig(required);
  assert.deepEqual(
    [config.limits.maxDepth, config.limits.maxAliases, config.limits.maxCost, config.limits.maxTokens],
    [12, 15, 50_000, 2000],
  );
  assert.deepEqual([config.limits.defaultPageSize, config.limits.defaultTopK], [20, 10]);
  assert.throws(() => loadConfig({ ...required, GRAPHQL_MAX_DEPTH: "0" }), /GRAPHQL_MAX_DEPTH/);
  assert.throws(() => loadConfig({ ...required, GRAPHQL_MAX_COST: "lots" }), /GRAPHQL_MAX_COST/);
  assert.throws(
    () => loadConfig({ ...required, GRAPHQL_MAX_DOCUMENT_BYTES: "2000", MAX_REQUEST_BODY_BYTES: "1000" }),
    /GRAPHQL_MAX_DOCUMENT_BYTES: must not exceed MAX_REQUEST_BODY_BYTES/,
  );
});

describe("depth", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway({ GRAPHQL_MAX_DEPTH: "2" });
  });
  const atLimit = "{ health { ready } }";
  const above = "{ health { stores { store } } }";
  const aboveThroughFragment =
    "{ ...F } fragment F on Query { health { ...S } } fragment S on Health { stores { store } }";

  test("over HTTP: depth 2 runs, depth 3 is refused", async () => {
    assertOk(await gw.query(atLimit));
    assertLimit(await gw.query(above), "depth 3 exceeds the limit of 2", "depth");
    assertLimit(await gw.query(aboveThroughFragment), "depth 3 exceeds the limit of 2", "depth");
  });

  test("over graphql-ws: depth 2 runs, depth 3 is refused", async () => {
    const ok = await wsOperation(gw.url, { query: atLimit });
    assert.equal(ok.results.length, 1);
    assertOk(ok.results[0]!);
    const refused = await wsOperation(gw.url, { query: above });
    assert.equal(refused.results.length, 0);
    assertLimit({ errors: refused.errors }, "depth 3 exceeds the limit of 2", "depth");
  });
});

describe("aliases and cost", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway({ GRAPHQL_MAX_ALIASES: "3", GRAPHQL_MAX_COST: "8" });
  });

  test("3 aliases run, 4 are refused (HTTP and graphql-ws)", async () => {
    assertOk(await gw.query("{ a: __typename b: __typename c: __typename }"));
    const four = "{ a: __typename b: __typename c: __typename d: __typename }";
    assertLimit(await gw.query(four), "aliases 4 exceeds the limit of 3", "aliases");
    const overWs = await wsOperation(gw.url, { query: four });
    assertLimit({ errors: overWs.errors }, "aliases 4 exceeds the limit of 3", "aliases");
  });

  test("aliases inside a fragment count each time it is spread", async () => {
    const twice = "{ h1: health { ...F } h2: health { ...F } } fragment F on Health { r: ready }";
    assertLimit(await gw.query(twice), "aliases 4 exceeds the limit of 3", "aliases");
  });

  // health (1) + stores (1 + 6 x the sub-selection): the list of the six stores declares listSize 6.
  test("cost 8 runs, cost 9 is refused (HTTP and graphql-ws)", async () => {
    const atLimit = "{ health { stores { store } } }"; // 1 + (1 + 6 * 1)
    const above = "{ health { ready stores { store } } }"; // 1 + (1 + (1 + 6 * 1))
    const ok = await gw.query<{ health: { stores: { store: string }[] } }>(atLimit);
    assertOk(ok);
    assert.equal(ok.data!.health.stores.length, 6);
    assertLimit(await gw.query(above), "cost 9 exceeds the limit of 8", "cost");
    const overWs = await wsOperation(gw.url, { query: above });
    const wsErrors = overWs.errors ?? overWs.results[0]?.errors;
    assertLimit({ errors: wsErrors }, "cost 9 exceeds the limit of 8", "cost");
    assertOk((await wsOperation(gw.url, { query: atLimit })).results[0]!);
  });
});

describe("the cost model", () => {
  // The shapes the real schema has, built with its cost options (src/schema/cost.ts), plus the
  // fallbacks it never needs: a `topK` without a default and a list without a declared size.
  const builder = new SchemaBuilder<{ Context: Context; DefaultFieldNullability: false }>({
    plugins: [ScopeAuthPlugin, RelayPlugin, ComplexityPlugin],
    defaultFieldNullability: false,
    scopeAuth: { authScopes: () => ({}) },
    complexity: { fieldComplexity: fieldCost, disabled: true },
    relay: { edgesFieldOptions: connectionEdgesCost },
  });
  const none = () => null as never;
  const Page = builder.objectRef<object>("Page").implement({ fields: (t) => ({ number: t.int({ resolve: none }) }) });
  const File = builder.objectRef<object>("File").implement({
    fields: (t) => ({
      id: t.id({ resolve: none }),
      name: t.string({ resolve: none }),
      pages: t.field({ type: [Page], resolve: none }),
    }),
  });
  const Hit = builder.objectRef<object>("Hit").implement({
    fields: (t) => ({ score: t.float({ resolve: none }), file: t.field({ type: File, resolve: none }) }),
  });
  const KnowledgeBase = builder.objectRef<object>("KnowledgeBase").implement({
    fields: (t) => ({ files: t.connection({ type: File, resolve: none }) }),
  });
  builder.queryType({
    fields: (t) => ({
      files: t.connection({ type: File, resolve: none }),
      search: t.field({ type: [Hit], args: { query: t.arg.string(), topK: t.arg.int() }, resolve: none }),
      searchWithDefault: t.field({ type: [Hit], args: { topK: t.arg.int({ defaultValue: 4 }) }, resolve: none }),
      tags: t.stringList({ resolve: none }),
      kb: t.field({ type: KnowledgeBase, resolve: none }),
      stores: t.field({ type: [Page], ...listSize(6), resolve: none }),
      nodes: t.field({
        type: [File],
        nullable: { list: false, items: true },
        args: { ids: t.arg.idList({ required: true }) },
        resolve: none,
      }),
      byIds: t.field({
        type: [File],
        args: { ids: t.arg.idList({ required: true }), first: t.arg.int() },
        resolve: none,
      }),
    }),
  });
  const schema = builder.toSchema();
  const context = { config: { limits: { defaultPageSize: 20, defaultTopK: 10, defaultListSize: 20 } } };
  const cost = (query: string, variables: Record<string, unknown> = {}) =>
    measureComplexity(schema, parse(query), { variables, context })!.complexity;

  test("first/last multiply their sub-selection; a connection's edges are not multiplied again", () => {
    assert.equal(cost("{ files(first: 50) { edges { node { id name } } } }"), 1 + 50 * (1 + (1 + 2)));
    assert.equal(
      cost("{ files(last: 5) { edges { node { id } } pageInfo { hasNextPage } } }"),
      1 + 5 * (1 + (1 + 1) + (1 + 1)),
    );
    assert.equal(cost("query($n: Int) { files(first: $n) { edges { cursor } } }", { n: 7 }), 1 + 7 * 2);
  });

  test("without first the default page size applies; topK multiplies, with its default when absent", () => {
    assert.equal(cost("{ files { edges { cursor } } }"), 1 + 20 * 2);
    assert.equal(cost("{ search(topK: 3) { score } }"), 1 + 3 * 1);
    assert.equal(cost("{ search { score } }"), 1 + 10 * 1);
    assert.equal(cost("{ searchWithDefault { score } }"), 1 + 4 * 1);
  });

  test("nested lists multiply: a list without arguments counts as 20, one that declares listSize as that", () => {
    // search(topK: 2) { file { pages { number } } } = 1 + 2 * (1 + (1 + 20 * 1))
    assert.equal(cost("{ search(topK: 2) { file { pages { number } } } }"), 1 + 2 * (1 + (1 + 20)));
    assert.equal(
      cost("{ kb { files(first: 3) { edges { node { pages { number } } } } } }"),
      1 + (1 + 3 * (1 + (1 + (1 + 20)))),
    );
    assert.equal(cost("{ tags }"), 1);
    assert.equal(cost("{ stores { number } }"), 1 + 6 * 1);
  });

  test("list arguments count by their length: nodes(ids:) multiplies by the ids, every item costs 1", () => {
    const ids = Array.from({ length: 500 }, (_, i) => `id${i}`);
    assert.equal(cost("query($ids: [ID!]!) { nodes(ids: $ids) { id name } }", { ids }), 1 + 500 + 500 * 2);
    assert.equal(cost('{ nodes(ids: ["a", "b", "c"]) { id } }'), 1 + 3 + 3 * 1);
    assert.equal(cost('{ byIds(ids: ["a", "b"], first: 5) { id } }'), 1 + 2 + 5 * 1);
  });

  test("every list field of the real schema is sliced by an argument, sized by a list argument, or declares listSize", async () => {
    const { schema: real } = await import("../src/schema/index.js");
    const { isListType, getNullableType, getNamedType, isObjectType, isInterfaceType, isLeafType } =
      await import("graphql");
    const unbounded: string[] = [];
    for (const type of Object.values(real.getTypeMap())) {
      if (type.name.startsWith("__") || !(isObjectType(type) || isInterfaceType(type))) continue;
      for (const field of Object.values(type.getFields())) {
        if (!isListType(getNullableType(field.type))) continue;
        const sliced = field.args.some((arg) => ["first", "last", "topK"].includes(arg.name));
        const sized = field.args.some((arg) => isListType(getNullableType(arg.type)));
        // listSize, and a connection's edges (as many as the connection's first/last).
        const declared = typeof field.extensions.complexity === "object";
        const scalars = isLeafType(getNamedType(field.type));
        if (!(sliced || sized || declared || type.name === "Mutation" || scalars))
          unbounded.push(`${type.name}.${field.name}`);
      }
    }
    assert.deepEqual(unbounded, []);
  });

  test("fragments count where they are spread, and a fragment bomb stays linear", () => {
    const levels = 30;
    const spreads = Array.from(
      { length: levels },
      (_, i) => `fragment F${i} on File { ...F${i + 1} ...F${i + 1} }`,
    ).join("\n");
    const query = `{ files(first: 1) { edges { node { ...F0 } } } }\n${spreads}\nfragment F${levels} on File { id }`;
    assert.equal(cost(query), 1 + 1 * (1 + (1 + 2 ** levels)));
  });
});

describe("tokens", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway({ GRAPHQL_MAX_TOKENS: "5" });
  });
  test("5 tokens run, 6 are refused (HTTP and graphql-ws)", async () => {
    assertOk(await gw.query("{ a: __typename }"));
    assertLimit(await gw.query("query { a: __typename }"), "tokens 6 exceeds the limit of 5", "tokens");
    const overWs = await wsOperation(gw.url, { query: "query { a: __typename }" });
    assertLimit({ errors: overWs.errors }, "tokens 6 exceeds the limit of 5", "tokens");
  });
});

describe("document and request body size", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway({ GRAPHQL_MAX_DOCUMENT_BYTES: "100", MAX_REQUEST_BODY_BYTES: "300" });
  });
  const documentOf = (bytes: number) => {
    const base = "{ __typename }\n#";
    return base + "x".repeat(bytes - base.length);
  };
  const post = (body: string, headers: Record<string, string> = {}) =>
    fetch(`${gw.url}/graphql`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });

  test("a 100-byte document runs, a 101-byte one is refused (HTTP and graphql-ws)", async () => {
    assert.equal(Buffer.byteLength(documentOf(100)), 100);
    assertOk(await gw.query(documentOf(100)));
    assertLimit(
      await gw.query(documentOf(101)),
      "document size 101 bytes exceeds the limit of 100 bytes",
      "document size",
    );
    const overWs = await wsOperation(gw.url, { query: documentOf(101) });
    assertLimit({ errors: overWs.errors }, "document size 101 bytes exceeds the limit of 100 bytes", "document size");
    assertOk((await wsOperation(gw.url, { query: documentOf(100) })).results[0]!);
  });

  test("a 300-byte body runs, a 301-byte one is refused with 413", async () => {
    const json = JSON.stringify({ query: "{ __typename }" });
    const atLimit = await post(json + " ".repeat(300 - json.length));
    assert.equal(atLimit.status, 200);
    assertOk((await atLimit.json()) as object);
    const above = await post(json + " ".repeat(301 - json.length));
    assert.equal(above.status, 413);
    assertLimit(
      (await above.json()) as { errors: [] },
      "request body 301 bytes exceeds the limit of 300 bytes",
      "request body",
    );
  });

  test("a chunked body (no Content-Length) is cut off past the limit too", async () => {
    const json = JSON.stringify({ query: "{ __typename }" });
    const chunked = (text: string) =>
      new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(text));
          controller.close();
        },
      });
    const ok = await fetch(`${gw.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chunked(json),
      duplex: "half",
    } as RequestInit);
    assert.equal(ok.status, 200);
    const big = await fetch(`${gw.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chunked(json + " ".repeat(400)),
      duplex: "half",
    } as RequestInit);
    assert.equal(big.status, 413);
  });

  test("a graphql-ws message larger than the body limit closes the socket (1009)", async () => {
    const outcome = await wsOperation(gw.url, { query: "{ __typename }", variables: { pad: "x".repeat(400) } });
    assert.equal(outcome.closed?.code, 1009);
  });

  test("batched requests are refused", async () => {
    const response = await post(JSON.stringify([{ query: "{ __typename }" }, { query: "{ __typename }" }]));
    assert.equal(response.status, 400);
    const body = (await response.json()) as { errors: { message: string }[] };
    assert.match(body.errors[0]!.message, /Batching is not supported/);
  });
});

test("the default limits let the screens a LAYRA frontend renders through in one query", async () => {
  const gw = await gateway({});
  const token = await gw.token("screens");
  const screens = {
    knowledgeBases: `{ me { knowledgeBases { totalCount edges { node { name fileCount files { totalCount edges { node { filename url pages { pageNumber url } } } } } } } } }`,
    chat: `{ me { modelConfig { selectedModel { modelName baseUsed { baseId } } } conversations { edges { node { name turns { edges { node {
      userText aiMessage timestamp retrievedPages { score fileName imageUrl } uploadedFiles { filename url } } } } } } } } }`,
    workflows: `{ me { workflows { edges { node { name nodes edges globalVariables chatflows { edges { node { name turns { totalCount } } } } } } } customNodes { name } } }`,
  };
  for (const [screen, query] of Object.entries(screens)) {
    const result = await gw.query(query, { token });
    assert.equal(result.errors, undefined, `${screen}: ${JSON.stringify(result.errors)}`);
  }
});

test("in production, a document that repeats one field 500 times is refused at the default limits", async () => {
  const gw = await gateway({ NODE_ENV: "production" });
  const token = await gw.token("repeats");
  const repeated = `{ me { ${"username ".repeat(500)}} }`;
  assertLimit(await gw.query(repeated, { token }), "fields 501 exceeds the limit of 200", "fields");
});

describe("input lists and the response ceiling", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway({ MAX_INPUT_LIST_LENGTH: "100", SEARCH_MAX_QUERY_VECTORS: "100", MAX_RESPONSE_BYTES: "2048" });
  });

  test("a list argument longer than MAX_INPUT_LIST_LENGTH is refused before anything runs, at any depth", async () => {
    const token = await gw.token("lists");
    const ids = Array.from({ length: 101 }, (_, i) => `id${i}`);
    assertLimit(
      await gw.query('query($ids: [String!]!) { searchKnowledgeBases(knowledgeBaseIds: $ids, query: "x") { score } }', {
        token,
        variables: { ids },
      }),
      "input list 101 items exceeds the limit of 100 items",
      "input list",
    );
    const nested = await gw.query('mutation($d: JSON!) { saveCustomNode(name: "n", definition: $d) { name } }', {
      token,
      variables: { d: { deep: { list: Array.from({ length: 101 }, () => 1) } } },
    });
    assertLimit(nested, "input list 101 items exceeds the limit of 100 items", "input list");
  });

  test("a response heavier than MAX_RESPONSE_BYTES is replaced by LIMIT_EXCEEDED, over HTTP and graphql-ws", async () => {
    const small = "{ health { ready } }";
    assertOk(await gw.query(small));
    const aliases = Array.from({ length: 14 }, (_, i) => `a${i}: health { stores { store up latencyMs } }`).join(" ");
    const heavy = `{ ${aliases} }`;
    const overHttp = await gw.query(heavy);
    assert.equal(overHttp.data, undefined);
    assert.equal(overHttp.errors?.[0]?.extensions?.code, "LIMIT_EXCEEDED");
    assert.equal(overHttp.errors?.[0]?.extensions?.limit, "response size");
    const overWs = await wsOperation(gw.url, { query: heavy });
    assert.equal(overWs.results[0]?.errors?.[0]?.extensions?.limit, "response size");
  });
});

describe("operations in flight per WebSocket", () => {
  test("past WS_MAX_OPERATIONS a subscribe is refused with LIMIT_EXCEEDED on that operation; the socket and its streams go on", async () => {
    const gw = await gateway({ WS_MAX_OPERATIONS: "3", PROGRESS_MISSING_KEY_WAIT_MS: "120000" });
    const username = uniqueName("wsops");
    const token = await gw.token(username);
    const client = wsClient(gw.url, { Authorization: `Bearer ${token}` });
    // Each waits for a task that never appears: it stays in flight until it is unsubscribed.
    const open = (taskId: string) => {
      const seen: { errors?: unknown; ended: boolean } = { ended: false };
      const stop = client.subscribe(
        { query: `subscription($id: String!) { taskProgress(taskId: $id) { end } }`, variables: { id: taskId } },
        {
          next: () => undefined,
          error: (error) => {
            seen.errors = error;
            seen.ended = true;
          },
          complete: () => (seen.ended = true),
        },
      );
      return { seen, stop };
    };
    try {
      const streams = Array.from({ length: 3 }, () => open(`${username}_${randomUUID()}`));
      // Twenty more on the same socket at once: each is refused, none is run.
      const refused = Array.from({ length: 20 }, () => open(`${username}_${randomUUID()}`));
      await eventually(() => refused.every((r) => r.seen.ended), "every subscribe past the limit answered", 20_000);
      for (const { seen } of refused) {
        const errors = seen.errors as { message: string; extensions?: Record<string, unknown> }[];
        assert.ok(Array.isArray(errors), JSON.stringify(seen.errors));
        assert.equal(errors[0]!.extensions?.code, "LIMIT_EXCEEDED");
        assert.equal(errors[0]!.extensions?.limit, "operations in flight on this socket");
        assert.equal(errors[0]!.extensions?.max, 3);
      }
      assert.ok(
        streams.every((s) => !s.seen.ended),
        "the three streams in flight are still open",
      );
      // One ends: its place is free for the next operation on the same socket.
      streams[0]!.stop();
      await eventually(async () => {
        const result = await new Promise<{ data?: unknown; errors?: unknown }>((resolve) => {
          let got: { data?: unknown; errors?: unknown } = {};
          client.subscribe(
            { query: "{ __typename }" },
            { next: (r) => void (got = r), error: (e) => resolve({ errors: e }), complete: () => resolve(got) },
          );
        });
        return JSON.stringify(result.data) === JSON.stringify({ __typename: "Query" });
      }, "a query runs once a stream ended");
    } finally {
      await client.dispose();
    }
  });
});

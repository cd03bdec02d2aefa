// GraphiQL as the gateway serves it: one self-contained page (no CDN), the starter operations, the
// development header, the CSRF header it sends, and nothing at all in production.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { eventually, redisClient, sharedStackEnv, startGateway, type TestGateway } from "./helpers.js";
import { STARTER_OPERATIONS } from "../src/server/graphiql.js";
import { wsClient } from "./ws.js";

let shared: Awaited<ReturnType<typeof sharedStackEnv>>;
let development: TestGateway;
let production: TestGateway;
const DEMO_HEADER = "Bearer header-given-by-npm-start";
/** What npm start hands over from its demo data (dev/seed-demo.ts). */
const STARTER_VARIABLES = {
  knowledgeBaseId: `demo_${randomUUID()}`,
  taskId: `demo_${randomUUID()}`,
  conversationId: `demo_${randomUUID()}`,
};

before(async () => {
  shared = await sharedStackEnv();
  development = await startGateway(
    shared.env,
    {},
    { graphiql: { headers: { Authorization: DEMO_HEADER }, starterVariables: STARTER_VARIABLES } },
  );
  production = await startGateway(
    shared.env,
    { NODE_ENV: "production" },
    { graphiql: { headers: { Authorization: DEMO_HEADER } } },
  );
});
after(async () => {
  await development?.close();
  await production?.close();
  await shared?.close();
});

const page = (url: string) => fetch(`${url}/graphql`, { headers: { accept: "text/html" } });

/** The options object the page hands to GraphiQL. */
function renderOptions(html: string): Record<string, unknown> {
  const match = /renderYogaGraphiQL\(\s*window\.document\.querySelector\('#root'\),\s*(\{.*?\}),\s*\);/s.exec(html);
  assert.ok(match, "the page renders Yoga's GraphiQL");
  return JSON.parse(match[1]!) as Record<string, unknown>;
}

test("GraphiQL is one self-contained page: scripts, styles, fonts and workers inline, nothing from a CDN", async () => {
  const response = await page(development.url);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /text\/html/);
  const html = await response.text();
  assert.doesNotMatch(html, /<script[^>]+src=/i, "no external script");
  assert.doesNotMatch(html, /<link[^>]+href=["']?(https?:)?\/\//i, "no external stylesheet or icon");
  assert.doesNotMatch(html, /unpkg\.com|jsdelivr|cdnjs|esm\.sh|fonts\.googleapis/i);
  assert.match(html, /YogaGraphiQL/);
});

test("in development it opens with the given header, the CSRF header and the starter operations the schema runs", async () => {
  const options = renderOptions(await (await page(development.url)).text());
  assert.equal(options.headers, JSON.stringify({ Authorization: DEMO_HEADER }, null, 2));
  assert.deepEqual(options.additionalHeaders, { "x-graphql-csrf": "1" });
  assert.equal(options.shouldPersistHeaders, false, "the token is not kept in the browser's storage");
  assert.equal(options.subscriptionsProtocol, "WS");
  const tabs = options.defaultTabs as { query: string; headers: string; variables: string | null }[];
  const names = tabs.map((tab) => /^(query|mutation|subscription) (\w+)/m.exec(tab.query)?.[2]);
  for (const name of ["Profile", "Search", "Progress", "Ask"]) assert.ok(names.includes(name), String(names));
  const hasUpload = development.app.yoga.getEnveloped().schema.getMutationType()?.getFields().uploadFiles;
  assert.equal(names.includes("Upload"), Boolean(hasUpload), "the upload tab appears once the schema has uploadFiles");
  assert.ok(tabs.length <= STARTER_OPERATIONS.length);
  for (const tab of tabs) assert.equal(tab.headers, options.headers);
  // The tabs run as given: their variables carry the demo's knowledge base and finished task.
  const variables = (name: string) =>
    JSON.parse(
      (tabs as { query: string; variables: string }[]).find(
        (tab) => tab.query.includes(`query ${name}`) || tab.query.includes(`subscription ${name}`),
      )!.variables,
    ) as Record<string, unknown>;
  assert.equal(variables("Search").knowledgeBaseId, STARTER_VARIABLES.knowledgeBaseId);
  assert.equal(variables("Progress").taskId, STARTER_VARIABLES.taskId);
  assert.equal(variables("Ask").conversationId, STARTER_VARIABLES.conversationId);
  assert.ok(String(variables("Ask").question).length > 0, "the Ask tab comes with a question");

  // The profile tab runs as it is with the header the page carries.
  const token = await development.token("graphiqluser");
  const profile = tabs.find((tab) => tab.query.includes("query Profile"))!;
  const result = await development.query<{ me: { username: string } }>(profile.query, { token });
  assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  assert.equal(result.data?.me.username, "graphiqluser");
});

test("the header GraphiQL always sends passes the CSRF check that refuses a bare GET", async () => {
  const query = encodeURIComponent("{ health { ready } }");
  const bare = await fetch(`${development.url}/graphql?query=${query}`);
  assert.equal(bare.status, 403);
  const fromIde = await fetch(`${development.url}/graphql?query=${query}`, { headers: { "x-graphql-csrf": "1" } });
  assert.equal(fromIde.status, 200);
  const body = (await fromIde.json()) as { errors?: unknown; data?: { health: { ready: boolean } } };
  assert.equal(body.errors, undefined);
  assert.equal(typeof body.data?.health.ready, "boolean");
});

test("without a header given, GraphiQL opens with an empty header editor", async () => {
  const plain = await startGateway(shared.env);
  try {
    const options = renderOptions(await (await page(plain.url)).text());
    assert.equal(options.headers, "{}");
  } finally {
    await plain.close();
  }
});

test("production serves no GraphiQL, even when a header is passed", async () => {
  const response = await page(production.url);
  assert.doesNotMatch(response.headers.get("content-type") ?? "", /text\/html/);
  assert.doesNotMatch(await response.text(), /YogaGraphiQL|header-given-by-npm-start/);
});

test("GET / points to /graphql", async () => {
  for (const gateway of [development, production]) {
    const response = await fetch(`${gateway.url}/`, { redirect: "manual" });
    assert.equal(response.status, 302);
    assert.equal(response.headers.get("location"), "/graphql");
  }
});

test("the Progress tab, run as given, shows a worker's page progress as it happens", async () => {
  const progress = STARTER_OPERATIONS.find((operation) => operation.name === "Progress")!;
  const token = await development.token("graphiqluser");
  const taskId = `graphiqluser_${randomUUID()}`;
  const taskDb = redisClient(development.config, "task");
  const client = wsClient(development.url, { Authorization: `Bearer ${token}` });
  const results: { data?: unknown; errors?: unknown }[] = [];
  try {
    await taskDb.hset(`task:${taskId}`, { status: "processing", total: "1", processed: "0", message: "start" });
    await taskDb.expire(`task:${taskId}`, 600);
    const done = new Promise<void>((resolve, reject) =>
      client.subscribe(
        { query: progress.query, variables: { taskId } },
        { next: (result) => void results.push(result), error: reject, complete: resolve },
      ),
    );
    await eventually(() => results.length === 1, "the first state");
    // A gateway worker's page fields, as it writes them after each batch of a 32-page file.
    await taskDb.hset(`task:${taskId}`, { current_file: "long.pdf", file_pages_done: "0", file_pages_total: "32" });
    await eventually(() => results.length === 2, "the file's first state");
    await taskDb.hset(`task:${taskId}`, { file_pages_done: "8" });
    await eventually(() => results.length === 3, "8 of 32 pages");
    await taskDb.hset(`task:${taskId}`, { status: "completed", processed: "1", message: "done" });
    await done;
    const states = results.map((result) => {
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      return (result.data as { taskProgress: Record<string, unknown> }).taskProgress;
    });
    assert.deepEqual(
      states.map((state) => [state.pagesDone, state.pagesTotal, state.currentFile]),
      [
        [null, null, null],
        [0, 32, "long.pdf"],
        [8, 32, "long.pdf"],
        [8, 32, "long.pdf"],
      ],
    );
    assert.equal(states.at(-1)!.end, "COMPLETED");
  } finally {
    await client.dispose();
    await taskDb.quit();
  }
});

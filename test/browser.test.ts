// In a real headless Chromium against a gateway on the local stack: GraphiQL renders with no failed
// or outside request, runs the profile query with the header it opened with, and shows a
// taskProgress subscription's live updates, over graphql-ws and over SSE (with the CSRF header),
// while the test writes LAYRA's task hash step by step; on the demo data `npm start` seeds, each
// starter tab switches on its first click and runs as given.
// Screenshots of every step go to test-output/screenshots.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Redis } from "ioredis";
import type { Request } from "playwright-core";
import { seedDemo } from "../dev/seed-demo.js";
import { mintToken } from "../src/resolvers/auth.js";
import { closeStores, createStores } from "../src/stores/index.js";
import { openBrowser, type BrowserSession } from "./fixtures/browser.js";
import { taskId, uploadSteps } from "./fixtures/layra-task-writer.js";
import { redisClient, sharedStackEnv, startGateway, testConfig, type TestGateway } from "./helpers.js";
import { createTopic, ingestOverrides, startWorkers } from "./ingest-helpers.js";

const USER = "browseruser";
let shared: Awaited<ReturnType<typeof sharedStackEnv>>;
let gateway: TestGateway;
/** The same gateway setup with GraphiQL subscribing over SSE instead of graphql-ws. */
let sseGateway: TestGateway;
let browser: BrowserSession;
/** LAYRA's task database, where the writer fixture puts progress. */
let taskDb: Redis;

before(async () => {
  shared = await sharedStackEnv();
  // The token exists before the gateway, as with npm start: GraphiQL opens with it.
  const config = testConfig(shared.env);
  const stores = createStores(config);
  const token = await mintToken(config, stores, USER, 3600);
  await closeStores(stores);
  taskDb = redisClient(config, "task");
  const graphiql = { headers: { Authorization: `Bearer ${token}` } };
  gateway = await startGateway(shared.env, {}, { graphiql });
  sseGateway = await startGateway(shared.env, { GRAPHIQL_SUBSCRIPTIONS_PROTOCOL: "SSE" }, { graphiql });
  browser = await openBrowser();
});
after(async () => {
  await browser?.close();
  await gateway?.close();
  await sseGateway?.close();
  taskDb?.disconnect();
  await shared?.close();
});

/** Monaco draws spaces as no-break spaces: text as written, so patterns can hold plain spaces. */
const editorText = (text: string) => text.replace(/\u00a0/g, " ");

/** The text of GraphiQL's result pane. */
const resultText = async () =>
  editorText(await browser.page.locator(".graphiql-response").innerText({ timeout: 60_000 }));

async function waitForResult(matches: (text: string) => boolean, what: string): Promise<string> {
  let text = "";
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    text = await resultText().catch(() => "");
    if (matches(text)) return text;
    await browser.page.waitForTimeout(200);
  }
  await browser.screenshot(`graphiql-failed-${what}`);
  throw new Error(`GraphiQL's result pane never showed ${what}; it shows:\n${text}`);
}

test("GraphiQL renders offline and runs the profile query with the header it opened with", async () => {
  const { page } = browser;
  await page.goto(`${gateway.url}/graphql`);
  await page.locator(".graphiql-container").first().waitFor({ timeout: 60_000 });
  await page.locator(".graphiql-execute-button").waitFor();
  await browser.screenshot("graphiql-open");
  await page.locator(".graphiql-execute-button").click();
  const text = await waitForResult((t) => t.includes(USER), "the profile");
  assert.match(text, new RegExp(`"username":\\s*"${USER}"`));
  assert.doesNotMatch(text, /UNAUTHENTICATED/);
  await browser.screenshot("graphiql-profile");
  assert.deepEqual(browser.offending, [], "no failed asset and nothing from outside 127.0.0.1");
});

for (const protocol of ["graphql-ws", "SSE"] as const) {
  test(`a taskProgress subscription in GraphiQL over ${protocol} shows live updates as LAYRA writes the task`, async () => {
    const { page } = browser;
    const server = protocol === "SSE" ? sseGateway : gateway;
    if (protocol === "SSE") {
      await page.goto(`${server.url}/graphql`);
      await page.locator(".graphiql-execute-button").waitFor({ timeout: 60_000 });
    }
    // How the subscription went out: an event-stream request, or a WebSocket.
    const transports = new Set<string>();
    const onRequest = (request: Request) => {
      if ((request.headers()["accept"] ?? "").includes("text/event-stream")) transports.add("SSE");
    };
    const onWebSocket = () => transports.add("graphql-ws");
    page.on("request", onRequest);
    page.on("websocket", onWebSocket);
    const id = taskId(USER);
    const steps = uploadSteps(taskDb, id, [{ name: "a.pdf" }, { name: "b.pdf" }]);
    await steps[0]!.write();
    await page.getByText("Progress", { exact: true }).first().click();
    // The variables editor: replace its text with this task's id.
    await page.getByText("Variables", { exact: true }).click();
    await page.getByText('"taskId"').click();
    await page.keyboard.press("ControlOrMeta+A");
    await page.keyboard.insertText(JSON.stringify({ taskId: id }));
    // The editor auto-closes brackets and quotes: drop whatever it added after the cursor.
    await page.keyboard.press("Shift+End");
    await page.keyboard.press("Delete");
    await page.locator(".graphiql-execute-button").click();
    await waitForResult(
      (t) => /"status":\s*"processing"/.test(t) && /"total":\s*2/.test(t),
      `${protocol}: the first state`,
    );
    await browser.screenshot(`graphiql-progress-${protocol}-start`);
    for (const step of steps.slice(1)) {
      await step.write();
      const { processed, status } = step.state;
      await waitForResult(
        (t) => new RegExp(`"processed":\\s*${processed}\\b`).test(t) && new RegExp(`"status":\\s*"${status}"`).test(t),
        `${protocol}: processed ${processed}, ${status}`,
      );
    }
    const final = await waitForResult((t) => /"end":\s*"COMPLETED"/.test(t), `${protocol}: the end of the stream`);
    assert.match(final, /"percent":\s*100/);
    await browser.screenshot(`graphiql-progress-${protocol}-completed`);
    page.off("request", onRequest);
    page.off("websocket", onWebSocket);
    assert.deepEqual([...transports], [protocol], "the subscription used the configured transport only");
    assert.deepEqual(browser.offending, []);
  });
}

test("each of GraphiQL's starter tabs switches on its first click and runs as given on the demo data", async () => {
  // What `npm start` serves: the demo seeded through a worker, GraphiQL's tabs filled in from it.
  const overrides = ingestOverrides({ EMBEDDING_IMAGE_DPI: "200" });
  const seeding = await startGateway(shared.env, overrides);
  let demo: TestGateway | undefined;
  try {
    await createTopic(seeding.config, 1);
    const stopWorkers = await startWorkers(seeding, shared.env, overrides);
    let starterVariables: Awaited<ReturnType<typeof seedDemo>>;
    try {
      starterVariables = await seedDemo(seeding.app.stores, shared.env.MODEL_SERVER_URL!, shared.env.CHAT_MODEL_URL!);
    } finally {
      await stopWorkers();
    }
    const token = await seeding.token("demo");
    demo = await startGateway(
      shared.env,
      { ...overrides, MONGODB_DB: seeding.config.mongo.database, MINIO_BUCKET_NAME: seeding.config.s3.bucket },
      { graphiql: { headers: { Authorization: `Bearer ${token}` }, starterVariables } },
    );
    const { page } = browser;
    await page.goto(`${demo.url}/graphql`);
    await page.locator(".graphiql-execute-button").waitFor({ timeout: 60_000 });
    // Middle tabs first: a first click on any tab but the last used to leave Profile active.
    const tabs: [name: string, answer: RegExp, ok: boolean][] = [
      ["Search", /"filename":\s*"router-setup\.pdf"/, true],
      ["Upload", /"files: must contain at least one file"/, false],
      ["Progress", /"status":\s*"completed"[\s\S]*"end":\s*"COMPLETED"/, true],
      // The pane wraps long strings: the answer's words may be split over lines.
      [
        "Ask",
        /"type":\s*"TURN"[\s\S]*"aiMessage":\s*"[^"]*You\s+asked:\s+How\s+do\s+I\s+do\s+a\s+factory\s+reset/,
        true,
      ],
      ["Profile", /"username":\s*"demo"/, true],
    ];
    for (const [name, answer, ok] of tabs) {
      await page.locator(".graphiql-tab-button", { hasText: name }).click();
      await page.locator(".graphiql-tab-active", { hasText: name }).waitFor({ timeout: 5_000 });
      // GraphiQL reads the operation name from the editor 100 ms after its text changes (a debounce that
      // also stores the text as `graphiql:query`); Run pressed sooner sends the previous tab's name with
      // this tab's query ("Cannot infer operation Ask"). A person never clicks that fast; the test waits for it.
      await page.waitForFunction(
        (operation) =>
          new RegExp(`\\b(query|mutation|subscription) ${operation}\\b`).test(
            localStorage.getItem("graphiql:query") ?? "",
          ),
        name,
        { timeout: 30_000 },
      );
      await page.locator(".graphiql-execute-button").click();
      const text = await waitForResult((t) => answer.test(t), `the ${name} tab's answer`);
      await browser.screenshot(`graphiql-tab-${name}`);
      if (ok) assert.doesNotMatch(text, /"errors"/, `${name}: ${text}`);
    }
    // The Upload tab says what to do in its first line, shown whole at 1400 px.
    await page.locator(".graphiql-tab-button", { hasText: "Upload" }).click();
    await page.locator(".graphiql-tab-active", { hasText: "Upload" }).waitFor({ timeout: 5_000 });
    const firstLine = page.locator(".graphiql-query-editor .view-line").first();
    assert.match(
      editorText(await firstLine.innerText()).trim(),
      /^# Run the README's curl: GraphiQL cannot send files\.$/,
    );
    // The line's text ends before the toolbar, not hidden under it or past the editor's edge.
    const [text, toolbar] = await Promise.all([
      firstLine.locator("span").first().boundingBox(),
      page.locator(".graphiql-execute-button").boundingBox(),
    ]);
    assert.ok(text!.x + text!.width <= toolbar!.x, JSON.stringify({ text, toolbar }));
    assert.deepEqual(browser.offending, []);
  } finally {
    await demo?.close();
    await seeding.close();
  }
});

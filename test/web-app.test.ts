// The example app in web/, built with `vite build` for persisted documents and served from its own
// origin, in headless Chromium against a gateway in persisted mode (the generated manifest) with a
// real ingestion worker on the local stack and Kafka: log in with a pasted token, create a knowledge
// base, upload a PDF with one topic per page and watch the progress bar move page by page to 100%,
// see the page thumbnails load, search each topic and see its page first, ask a conversation about a
// page and watch the answer stream in beside that page's thumbnail, stop a second answer. Screenshots of
// each step go to test-output/screenshots.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { openBrowser, type BrowserSession } from "./fixtures/browser.js";
import { buildWebApp, generateAndTypecheck, MANIFEST, serveStatic } from "./fixtures/web-app.js";
import { sharedStackEnv, startGateway, type TestGateway } from "./helpers.js";
import { defaultSettings, LayraWriter } from "../dev/layra-writer.js";
import { documentPdf } from "../dev/pdf.js";
import { TOPIC_PAGES, TOPICS } from "./fixtures/topic-pages.js";
import { createTopic, ingestOverrides, startWorkers } from "./ingest-helpers.js";

const USER = "webappuser";
const WAIT = { timeout: 300_000 };
let shared: Awaited<ReturnType<typeof sharedStackEnv>>;
let build: string;
let site: Awaited<ReturnType<typeof serveStatic>>;
let gateway: TestGateway;
let stopWorkers: () => Promise<unknown>;
let browser: BrowserSession;
let token: string;
/** What the page sent the gateway: HTTP request bodies and graphql-ws frames. */
const sent = { bodies: [] as string[], frames: [] as string[] };
/** The page's console errors and uncaught exceptions: there must be none. */
const consoleErrors: string[] = [];

before(async () => {
  await generateAndTypecheck();
  build = await mkdtemp(join(tmpdir(), "layra-web-build-"));
  await buildWebApp(build, { VITE_PERSISTED_DOCUMENTS: "true" });
  site = await serveStatic(build);
  shared = await sharedStackEnv();
  // Pages rendered as LAYRA does (200 DPI), so the local model server can read them; one page per
  // batch, so the bar has a state for each page.
  const overrides = ingestOverrides({
    PERSISTED_OPERATIONS_FILE: MANIFEST,
    CORS_ORIGINS: site.origin,
    EMBEDDING_IMAGE_DPI: "200",
    EMBEDDING_BATCH_PAGES: "1",
  });
  gateway = await startGateway(shared.env, overrides);
  await createTopic(gateway.config, 1);
  stopWorkers = await startWorkers(gateway, shared.env, overrides);
  token = await gateway.token(USER);
  browser = await openBrowser();
  browser.page.on("request", (request) => {
    if (request.url() === `${gateway.url}/graphql` && request.method() === "POST") {
      sent.bodies.push(request.postData() ?? "");
    }
  });
  browser.page.on("websocket", (socket) => socket.on("framesent", (frame) => sent.frames.push(String(frame.payload))));
  browser.page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  browser.page.on("pageerror", (error) => consoleErrors.push(error.message));
});
after(async () => {
  await browser?.close();
  await stopWorkers?.();
  await gateway?.close();
  await shared?.close();
  await site?.close();
  if (build) await rm(build, { recursive: true, force: true });
});

/** Every image under `selector` has loaded with real pixels, and there are at least `count`. */
const imagesLoaded = (selector: string, count: number) =>
  browser.page.waitForFunction(
    ([selector, count]) => {
      const images = [...document.querySelectorAll<HTMLImageElement>(selector)];
      return images.length >= count && images.every((image) => image.complete && image.naturalWidth > 0);
    },
    [selector, count] as const,
    WAIT,
  );

async function step<T>(name: string, action: () => Promise<T>): Promise<T> {
  try {
    const result = await action();
    await browser.screenshot(`web-app-${name}`);
    return result;
  } catch (error) {
    await browser.screenshot(`web-app-${name}-failed`);
    throw error;
  }
}

test("log in by pasting a token; the session survives a reload", async () => {
  const { page } = browser;
  await step("login", async () => {
    await page.goto(site.origin);
    await page.getByLabel("GraphQL endpoint").fill(`${gateway.url}/graphql`);
    await page.getByLabel("Token").fill(token);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.locator("#username", { hasText: USER }).waitFor(WAIT);
  });
  await step("reloaded", async () => {
    await page.reload();
    await page.locator("#username", { hasText: USER }).waitFor(WAIT);
    assert.equal(await page.getByLabel("Token").isVisible(), false);
  });
});

test("create a knowledge base, upload a PDF, watch the progress bar move page by page to 100% and the thumbnails load", async () => {
  const { page } = browser;
  await step("created", async () => {
    await page.getByLabel("New knowledge base").fill("manuals");
    await page.getByRole("button", { name: "Create" }).click();
    await page.locator("#knowledge-base option", { hasText: "manuals" }).waitFor({ state: "attached", ...WAIT });
    await page.locator("#library", { hasText: "manuals (0 files)" }).waitFor(WAIT);
  });
  // The bar's values as the page sets them, to show it moved while the worker ran.
  await page.evaluate(() => {
    const bar = document.querySelector<HTMLProgressElement>("#progress")!;
    const seen: number[] = [];
    (window as unknown as { progressSeen: number[] }).progressSeen = seen;
    new MutationObserver(() => seen.push(bar.value)).observe(bar, { attributes: true, attributeFilter: ["value"] });
  });
  await step("uploaded", async () => {
    const pdf = await documentPdf("manual.pdf", TOPIC_PAGES);
    await page.getByLabel("PDF").setInputFiles({ name: "manual.pdf", mimeType: "application/pdf", buffer: pdf });
    await page.getByRole("button", { name: "Upload" }).click();
    await page.waitForFunction(
      () => document.querySelector<HTMLProgressElement>("#progress")!.value === 100,
      null,
      WAIT,
    );
    await page.locator("#progress-text", { hasText: "completed: 1/1 files" }).waitFor(WAIT);
  });
  const seen = await page.evaluate(() => (window as unknown as { progressSeen: number[] }).progressSeen);
  assert.equal(seen.at(-1), 100, seen.join(","));
  // Pages done moved the bar before the file was: a bar counting files jumps from 0 to 100.
  assert.ok(
    seen.some((value) => value > 0 && value < 100),
    seen.join(","),
  );
  assert.deepEqual(
    seen,
    [...seen].sort((a, b) => a - b),
    "the bar never goes back",
  );
  await step("thumbnails", async () => {
    await page.locator("#library", { hasText: "manual.pdf (4 pages)" }).waitFor(WAIT);
    await imagesLoaded("#library img", 3);
  });
  // The library shows a file's first pages and a button for the rest.
  const more = page.getByRole("button", { name: "More pages (3 of 4 shown)" });
  await more.click();
  await step("more-pages", async () => {
    await imagesLoaded("#library img", 4);
    await more.waitFor({ state: "detached", ...WAIT });
  });
  const alts = await page
    .locator("#library img")
    .evaluateAll((images) => images.map((image) => image.getAttribute("alt")));
  assert.deepEqual(alts, ["manual.pdf page 1", "manual.pdf page 2", "manual.pdf page 3", "manual.pdf page 4"]);
});

test("search each topic and see its page first, with its image", async () => {
  const { page } = browser;
  for (const [index, topic] of TOPICS.entries()) {
    const first = `manual.pdf, page ${index + 1} (score`;
    await step(`search-${index + 1}`, async () => {
      await page.getByLabel("Query").fill(topic.query);
      await page.getByRole("button", { name: "Search" }).click();
      // The list is replaced when the answer comes: wait for this query's first hit.
      await page.locator("#hits li").first().filter({ hasText: first }).waitFor(WAIT);
      await imagesLoaded("#hits img", 1);
    });
    const hits = await page.locator("#hits li").allInnerTexts();
    assert.ok(hits.length >= 2 && hits.length <= 4, hits.join(" | "));
    assert.ok(hits[0]!.startsWith(first), `"${topic.query}": ${hits.join(" | ")}`);
    for (const hit of hits) assert.match(hit, /^manual\.pdf, page [1-4] \(score -?\d+\.\d\d\)/);
  }
  assert.deepEqual(browser.offending, [], "no failed request and nothing from outside 127.0.0.1");
});

test("ask a conversation about a page: the answer streams in beside that page's thumbnail; stop a slow one", async () => {
  const { page } = browser;
  // Conversations as LAYRA creates them, their models the local chat stand-in (dev/stack/chat-model-server.ts):
  // "slow" streams a word every 150 ms, "endless" never ends by itself.
  const writer = new LayraWriter(gateway.app.stores, gateway.config.model.url);
  const manuals = await page.locator("#knowledge-base option", { hasText: "manuals" }).getAttribute("value");
  const settings = (model: string) =>
    defaultSettings({
      model_name: model,
      model_url: shared.env.CHAT_MODEL_URL!,
      api_key: "sk-web-app-test",
      base_used: [{ name: "manuals", baseId: manuals! }],
      // The stand-in's page vectors score a few points per matching word, below LAYRA's default threshold.
      score_threshold: 0,
    });
  await writer.createConversation(USER, "Field notes", [], settings("stand-in slow"));
  const endless = await writer.createConversation(USER, "Endless notes", [], settings("stand-in slow endless"));
  await page.reload();
  await page.locator("#conversation option", { hasText: "Endless notes" }).waitFor({ state: "attached", ...WAIT });

  // The answer's text as the page shows it, at each change.
  await page.evaluate(() => {
    const answer = document.querySelector("#answer")!;
    const seen: string[] = [];
    (window as unknown as { answerSeen: string[] }).answerSeen = seen;
    new MutationObserver(() => seen.push(answer.textContent ?? "")).observe(answer, {
      childList: true,
      characterData: true,
      subtree: true,
    });
  });
  const question = `What rises through the crust? (${TOPICS[2]!.query})`;
  await step("answered", async () => {
    await page.getByLabel("Conversation").selectOption({ label: "Field notes" });
    await page.getByLabel("Question").fill(question);
    await page.getByRole("button", { name: "Ask" }).click();
    await page.locator("#answer-status", { hasText: "saved: completed" }).waitFor(WAIT);
    await imagesLoaded("#answer-pages img", 1);
  });
  const answer = (await page.locator("#answer").textContent()) ?? "";
  assert.ok(answer.startsWith(`You asked: ${question}`), answer);
  const seen = await page.evaluate(() => (window as unknown as { answerSeen: string[] }).answerSeen);
  assert.ok(
    seen.some((text) => text.length > 0 && text.length < answer.length),
    `the answer came in pieces: ${seen.length} changes`,
  );
  // The first retrieved page is the magma page: the same S3 object as the library's page 3 thumbnail.
  const objectPath = (url: string | null) => new URL(url!).pathname;
  const retrieved = await page.locator("#answer-pages img").first().getAttribute("src");
  const page3 = await page.locator('#library img[alt="manual.pdf page 3"]').getAttribute("src");
  assert.equal(objectPath(retrieved), objectPath(page3));
  assert.match(
    (await page.locator("#answer-pages img").first().getAttribute("alt")) ?? "",
    /^retrieved 1: manual\.pdf/,
  );

  await step("stopped", async () => {
    await page.getByLabel("Conversation").selectOption({ label: "Endless notes" });
    await page.getByLabel("Question").fill("Tell me everything about sourdough");
    await page.getByRole("button", { name: "Ask" }).click();
    await page.locator("#answer", { hasText: "You asked:" }).waitFor(WAIT);
    await page.getByRole("button", { name: "Stop" }).click();
    await page.locator("#answer-status", { hasText: "saved: aborted" }).waitFor(WAIT);
  });
  assert.equal(await page.getByRole("button", { name: "Stop" }).isDisabled(), true);
  assert.equal(await page.locator("#error").isVisible(), false);
  const stored = (await gateway.app.stores.mongo.db
    .collection("conversations")
    .findOne({ conversation_id: endless.conversation_id })) as unknown as {
    turns: { status: string; ai_message: { content: string } }[];
  };
  assert.deepEqual(
    stored.turns.map((turn) => turn.status),
    ["aborted"],
  );
  assert.ok(stored.turns[0]!.ai_message.content.endsWith(" ⚠️ Abort By User"), stored.turns[0]!.ai_message.content);
  assert.deepEqual(browser.offending, [], "no failed request and nothing from outside 127.0.0.1");
  assert.deepEqual(consoleErrors, [], "the page's console stays free of errors");
});

test("the app sent every operation by its hash from the generated manifest, never as query text", () => {
  // Profile (twice), Library (four times), CreateKnowledgeBase, UploadFiles, Search (once per topic).
  assert.ok(sent.bodies.length >= 9, `${sent.bodies.length} requests`);
  for (const body of sent.bodies) {
    // A JSON body, or a multipart one whose `operations` field holds it.
    const operation = JSON.parse(
      body.startsWith("{") ? body : (/name="operations"\r\n\r\n(.*?)\r\n/.exec(body)?.[1] ?? "null"),
    ) as Record<string, unknown> | null;
    assert.match(String(operation?.documentId), /^sha256:[0-9a-f]{64}$/, body.slice(0, 200));
    assert.equal(operation?.query, undefined);
  }
  assert.ok(
    sent.bodies.some((body) => body.includes('name="operations"')),
    "the upload was a multipart request",
  );
  const subscribes = sent.frames.map(
    (frame) => JSON.parse(frame) as { type: string; payload?: Record<string, unknown> },
  );
  const subscribe = subscribes.find((message) => message.type === "subscribe");
  assert.equal(subscribe?.payload?.query, "");
  assert.match(String(subscribe?.payload?.documentId), /^sha256:[0-9a-f]{64}$/);
});

// The demo data `npm start` seeds (dev/seed-demo.ts): real PDFs ingested by a worker from the task
// topic, as an upload is, so the demo's page images are rendered pages and search finds them.
import assert from "node:assert/strict";
import { test } from "node:test";
import sharp from "sharp";
import { seedDemo } from "../dev/seed-demo.js";
import { STARTER_OPERATIONS } from "../src/server/graphiql.js";
import { gatewayForFile } from "./helpers.js";
import { wsOperation } from "./ws.js";
import { createTopic, ingestOverrides, startWorkers } from "./ingest-helpers.js";

// npm start's worker renders at LAYRA's default 200 DPI.
const overrides = ingestOverrides({ EMBEDDING_IMAGE_DPI: "200" });
const state = gatewayForFile(overrides);

interface Base {
  knowledgeBaseId: string;
  name: string;
  files: { edges: { node: { filename: string; pageCount: number; pages: { url: string | null }[] } }[] };
}
const PROFILE = `{ me { knowledgeBases(first: 10) { edges { node { knowledgeBaseId name
  files(first: 10) { edges { node { filename pageCount pages { url } } } } } } } } }`;
const SEARCH = `query($id: String!, $query: String!) { searchKnowledgeBase(knowledgeBaseId: $id, query: $query, topK: 3) {
  page { pageNumber } file { filename } } }`;

test("the demo's files are real PDFs a worker ingested: page images are rendered pages, and search finds them", async () => {
  const { gateway } = state;
  await createTopic(gateway.config, 1);
  const stopWorkers = await startWorkers(gateway, state.env, overrides);
  let starterVariables: Awaited<ReturnType<typeof seedDemo>>;
  try {
    starterVariables = await seedDemo(gateway.app.stores, state.env.MODEL_SERVER_URL!, state.env.CHAT_MODEL_URL!);
  } finally {
    await stopWorkers();
  }
  const token = await gateway.token("demo");
  const profile = await gateway.query<{ me: { knowledgeBases: { edges: { node: Base }[] } } }>(PROFILE, { token });
  assert.equal(profile.errors, undefined, JSON.stringify(profile.errors));
  const bases = new Map(profile.data!.me.knowledgeBases.edges.map(({ node }) => [node.name, node]));
  const files = (name: string) =>
    bases
      .get(name)
      ?.files.edges.map(({ node }) => `${node.filename}:${node.pageCount}`)
      .sort();
  assert.deepEqual(files("Product manuals"), ["printer.pdf:2", "router-setup.pdf:3"]);
  assert.deepEqual(files("Research papers"), ["colpali.pdf:2"]);

  // A rendered A4 page at 200 DPI, not a placeholder square.
  const url = bases.get("Product manuals")!.files.edges[0]!.node.pages[0]!.url!;
  const image = Buffer.from(await (await fetch(url)).arrayBuffer());
  const { width, height } = await sharp(image).metadata();
  assert.ok((width ?? 0) > 1000 && (height ?? 0) > 1500, `${width}x${height}`);

  for (const [base, query, expected] of [
    ["Product manuals", "factory reset", "router-setup.pdf page 3"],
    ["Product manuals", "ink cartridge", "printer.pdf page 2"],
    ["Research papers", "maxsim late interaction", "colpali.pdf page 1"],
  ] as const) {
    const result = await gateway.query<{
      searchKnowledgeBase: { page: { pageNumber: number }; file: { filename: string } }[];
    }>(SEARCH, { variables: { id: bases.get(base)!.knowledgeBaseId, query }, token });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    const hits = result.data!.searchKnowledgeBase.map((hit) => `${hit.file.filename} page ${hit.page.pageNumber}`);
    assert.equal(hits[0], expected, `"${query}": ${hits.join(", ")}`);
  }

  // GraphiQL's Search and Progress tabs, run as npm start fills them in, answer without an error.
  const tab = (name: string) => STARTER_OPERATIONS.find((operation) => operation.name === name)!;
  const search = await gateway.query<{ searchKnowledgeBase: { file: { filename: string } }[] }>(tab("Search").query, {
    variables: { ...tab("Search").variables, knowledgeBaseId: starterVariables.knowledgeBaseId },
    token,
  });
  assert.equal(search.errors, undefined, JSON.stringify(search.errors));
  assert.equal(search.data!.searchKnowledgeBase[0]?.file.filename, "router-setup.pdf");
  const progress = await wsOperation(
    gateway.url,
    { query: tab("Progress").query, variables: { taskId: starterVariables.taskId } },
    { Authorization: `Bearer ${token}` },
  );
  assert.equal(progress.errors ?? progress.closed, undefined, JSON.stringify(progress));
  const states = progress.results.map(
    (result) => result.data as { taskProgress: { status: string; end: string | null } },
  );
  assert.deepEqual([states.at(-1)?.taskProgress.status, states.at(-1)?.taskProgress.end], ["completed", "COMPLETED"]);

  // The Ask tab, run as given on the demo conversation: the demo model (the chat stand-in) answers from the
  // router manual's reset page, streamed, and the answer ends with the turn as saved.
  const ask = tab("Ask");
  const asked = await wsOperation(
    gateway.url,
    { query: ask.query, variables: { ...ask.variables, conversationId: starterVariables.conversationId } },
    { Authorization: `Bearer ${token}` },
  );
  assert.equal(asked.errors ?? asked.closed, undefined, JSON.stringify(asked));
  const events = asked.results.map((result) => {
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    return (result.data as { ask: AskEvent }).ask;
  });
  const types = events.map((event) => event.type);
  assert.equal(types[0], "STARTED", types.join(","));
  assert.equal(types.at(-1), "TURN", types.join(","));
  assert.ok(types.includes("TEXT"), types.join(","));
  const pages = events.find((event) => event.type === "PAGES")?.pages ?? [];
  assert.equal(pages[0]?.fileName, "router-setup.pdf", JSON.stringify(pages));
  const text = events
    .filter((event) => event.type === "TEXT")
    .map((event) => event.delta)
    .join("");
  assert.ok(text.startsWith(`You asked: ${String(ask.variables!.question)}`), text);
  const turn = events.at(-1)!.turn!;
  assert.deepEqual([turn.messageId, turn.status], [events[0]!.messageId, "completed"]);
  assert.ok(turn.aiMessage.endsWith(text), turn.aiMessage);
  const saved = await gateway.query<{ conversation: { turns: { edges: { node: { messageId: string } }[] } } }>(
    `query($id: String!) { conversation(conversationId: $id) { turns(last: 1) { edges { node { messageId } } } } }`,
    { variables: { id: starterVariables.conversationId }, token },
  );
  assert.equal(saved.errors, undefined, JSON.stringify(saved.errors));
  assert.equal(saved.data!.conversation.turns.edges[0]?.node.messageId, turn.messageId);
});

interface AskEvent {
  type: string;
  messageId: string;
  delta: string | null;
  pages: { fileName: string }[] | null;
  turn: { messageId: string; status: string; aiMessage: string } | null;
}

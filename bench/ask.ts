// `npm run bench:ask`: time to the first answer token through `ask` (graphql-ws, retrieval over a warm base,
// page images from S3 or their cache, the openai SDK through the checked fetch) against the chat stand-in's
// own time to first token called directly with the same prompt, and a warm text search of the same base over
// HTTP (the goal: overhead at most warm search + 20 ms), in the same run and interleaved. The `ask <phase>`
// lines are the answer's own phase spans (docs/ask.md, "Phases"), caught with a tracing hook: `subscribe` is
// the client's subscribe to the start phase, `delivery` the model's first delta to the client's first TEXT event.
// Prints `name: value` lines; nothing here asserts on time.
import { performance } from "node:perf_hooks";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { defaultSettings, LayraWriter } from "../dev/layra-writer.js";
import { LocalStack } from "../dev/stack/stack.js";
import type { TracingHooks } from "../src/observability/tracing.js";
import { mongoCollections } from "../src/stores/mongo.js";
import { startGateway } from "../test/helpers.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);
const WARMUP = 3;
const PAGES = 40;

const p50 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!.toFixed(1);

/** The answer phases' spans of the ask being timed (one at a time), by phase. */
const spans = new Map<string, { start: number; end: number }>();
const tracing: TracingHooks = {
  startSpan: (name) => {
    const start = performance.now();
    return {
      end: () => {
        if (name.startsWith("ask ")) spans.set(name.slice(4), { start, end: performance.now() });
      },
    };
  },
};

const stack = await LocalStack.start({ only: ["mongo", "milvus", "redis", "s3", "model", "chatModel"] });
// A fresh collection's index is built on its first search, which can take seconds.
const gateway = await startGateway(
  stack.env,
  { LOG_LEVEL: process.env.LOG_LEVEL ?? "silent", STORE_TIMEOUT_MS: "120000" },
  { tracing },
);
try {
  const chatUrl = stack.env.CHAT_MODEL_URL;
  const writer = new LayraWriter(gateway.app.stores, gateway.config.model.url);
  const kb = await writer.createKnowledgeBase("bench", "manuals");
  await writer.ingestFile("bench", kb.knowledge_base_id, {
    filename: "manual.pdf",
    pages: Array.from({ length: PAGES }, (_, i) => ({ text: `router page ${i} reset wifi firmware` })),
  });
  const settings = defaultSettings({
    model_name: "stand-in",
    model_url: chatUrl,
    api_key: "sk-bench",
    base_used: [{ name: "manuals", baseId: kb.knowledge_base_id }],
    score_threshold: 0,
  });
  const token = await gateway.token("bench");
  const { conversations } = mongoCollections(gateway.app.stores.mongo.db);
  const client = createClient({
    url: `${gateway.url.replace(/^http/, "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    lazy: false,
  });

  /** ms to the first TEXT event, and each phase's ms. */
  const viaGateway = (question: string, conversationId: string) =>
    new Promise<{ ttft: number; phases: Record<string, number> }>((resolve, reject) => {
      spans.clear();
      const started = performance.now();
      let firstText = 0;
      client.subscribe(
        {
          query: `subscription($c: String!, $q: String!) { ask(conversationId: $c, question: $q) { type } }`,
          variables: { c: conversationId, q: question },
        },
        {
          next: (result) => {
            if (result.errors) reject(new Error(JSON.stringify(result.errors)));
            const type = (result.data as { ask?: { type: string } } | null)?.ask?.type;
            if (type === "TEXT" && firstText === 0) firstText = performance.now();
          },
          error: reject,
          complete: () => {
            const phases: Record<string, number> = {
              subscribe: (spans.get("start")?.start ?? NaN) - started,
              delivery: firstText - (spans.get("model")?.end ?? NaN),
            };
            for (const [phase, { start, end }] of spans) phases[phase] = end - start;
            resolve({ ttft: firstText - started, phases });
          },
        },
      );
    });

  /**
   * ms to the stand-in's first answer chunk, called directly with the prompt the gateway sent it last (its
   * page images as data: URLs, which the stand-in reads): the model's own share of the time, as the gateway met it.
   */
  const direct = async () => {
    const recorded = (await (await fetch(new URL("/requests", chatUrl))).json()) as { body: unknown }[];
    const body = JSON.stringify(recorded.at(-1)!.body);
    const started = performance.now();
    const response = await fetch(`${chatUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer sk-bench" },
      body,
    });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    let ttft = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      if (ttft === 0 && /"content":"[^"]/.test(text)) ttft = performance.now() - started;
    }
    return ttft;
  };

  /** ms of the same search the answer makes (text query, top 3, threshold 0), as a client makes it over HTTP. */
  const search = async (question: string) => {
    const started = performance.now();
    const result = await gateway.query(
      `query($kb: String!, $q: String!) { searchKnowledgeBase(knowledgeBaseId: $kb, query: $q, topK: 3, scoreThreshold: 0) { score } }`,
      { variables: { kb: kb.knowledge_base_id, q: question }, token },
    );
    if (result.errors) throw new Error(JSON.stringify(result.errors));
    return performance.now() - started;
  };

  // The base's page vectors in the search cache first: both sides are timed warm.
  await search("warm up");
  await gateway.app.stores.milvus.warmUpsDone();

  const gatewayTtft: number[] = [];
  const directTtft: number[] = [];
  const overhead: number[] = [];
  const warmSearch: number[] = [];
  const phases = new Map<string, number[]>();
  for (let round = 0; round < WARMUP + ROUNDS; round++) {
    const question = `how do I reset the router ${round}`;
    // A new conversation each round, the last one deleted: FerretDB (the local Mongo) decodes every document
    // of a collection on each find, so conversations or turns piling up would time its scan (about 1 ms a
    // conversation here), where MongoDB reads one conversation by its index.
    const { conversation_id } = await writer.createConversation("bench", `bench ${round}`, [], settings);
    // Each goes first on every other round: whatever one leaves warm for the other is shared evenly.
    let searched = round % 2 === 0 ? await search(question) : NaN;
    const via = await viaGateway(question, conversation_id);
    if (round % 2 === 1) searched = await search(question);
    const viaDirect = await direct();
    await conversations.deleteOne({ conversation_id });
    if (round < WARMUP) continue;
    directTtft.push(viaDirect);
    warmSearch.push(searched);
    gatewayTtft.push(via.ttft);
    overhead.push(via.ttft - viaDirect);
    for (const [phase, ms] of Object.entries(via.phases)) phases.set(phase, [...(phases.get(phase) ?? []), ms]);
  }
  await client.dispose();
  console.log(`rounds: ${ROUNDS} (${PAGES} pages in base_used, top_K 3)`);
  console.log(`ttft p50 ms: ${p50(gatewayTtft)}`);
  console.log(`ttft direct p50 ms: ${p50(directTtft)}`);
  console.log(`ttft overhead p50 ms: ${p50(overhead)}`);
  console.log(`warm search p50 ms: ${p50(warmSearch)}`);
  console.log(`ttft overhead goal ms: ${(Number(p50(warmSearch)) + 20).toFixed(1)} (warm search p50 + 20)`);
  for (const phase of ["subscribe", "start", "retrieval", "images", "model", "delivery"])
    console.log(`ask ${phase} p50 ms: ${p50(phases.get(phase) ?? [NaN])}`);
} finally {
  await gateway.close();
  await stack.close();
}

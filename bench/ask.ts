// `npm run bench:ask`: time to the first answer token through `ask` (graphql-ws, retrieval over a warm base,
// page images from S3, the openai SDK through the checked fetch, the Redis event stream) against the chat
// stand-in's own time to first token called directly, in the same run and interleaved. `ask retrieval` is
// STARTED to PAGES. Prints `name: value` lines; nothing here asserts on time.
import { performance } from "node:perf_hooks";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { defaultSettings, LayraWriter } from "../dev/layra-writer.js";
import { LocalStack } from "../dev/stack/stack.js";
import { startGateway } from "../test/helpers.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);
const WARMUP = 3;
const PAGES = 40;

const p50 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!.toFixed(1);

const stack = await LocalStack.start({ only: ["mongo", "milvus", "redis", "s3", "model", "chatModel"] });
const gateway = await startGateway(stack.env, { LOG_LEVEL: process.env.LOG_LEVEL ?? "silent" });
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
  const conversation = await writer.createConversation("bench", "bench", [], settings);
  const token = await gateway.token("bench");
  const client = createClient({
    url: `${gateway.url.replace(/^http/, "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    lazy: false,
  });

  /** ms to the first TEXT event, and STARTED to PAGES. */
  const viaGateway = (question: string) =>
    new Promise<{ ttft: number; retrieval: number }>((resolve, reject) => {
      const started = performance.now();
      let startedAt = 0;
      let retrieval = 0;
      let ttft = 0;
      client.subscribe(
        {
          query: `subscription($c: String!, $q: String!) { ask(conversationId: $c, question: $q) { type } }`,
          variables: { c: conversation.conversation_id, q: question },
        },
        {
          next: (result) => {
            const type = (result.data as { ask?: { type: string } } | null)?.ask?.type;
            const now = performance.now();
            if (type === "STARTED") startedAt = now;
            if (type === "PAGES") retrieval = now - startedAt;
            if (type === "TEXT" && ttft === 0) ttft = now - started;
          },
          error: reject,
          complete: () => resolve({ ttft, retrieval }),
        },
      );
    });

  /** ms to the stand-in's first answer chunk, called directly with a small prompt. */
  const direct = async (question: string) => {
    const started = performance.now();
    const response = await fetch(`${chatUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer sk-bench" },
      body: JSON.stringify({ model: "stand-in", stream: true, messages: [{ role: "user", content: question }] }),
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

  const gatewayTtft: number[] = [];
  const directTtft: number[] = [];
  const overhead: number[] = [];
  const retrieval: number[] = [];
  for (let round = 0; round < WARMUP + ROUNDS; round++) {
    const question = `how do I reset the router ${round}`;
    const viaDirect = await direct(question);
    const via = await viaGateway(question);
    if (round < WARMUP) continue;
    directTtft.push(viaDirect);
    gatewayTtft.push(via.ttft);
    overhead.push(via.ttft - viaDirect);
    retrieval.push(via.retrieval);
  }
  await client.dispose();
  console.log(`rounds: ${ROUNDS} (${PAGES} pages in base_used, top_K 3)`);
  console.log(`ttft p50 ms: ${p50(gatewayTtft)}`);
  console.log(`ttft direct p50 ms: ${p50(directTtft)}`);
  console.log(`ttft overhead p50 ms: ${p50(overhead)}`);
  console.log(`ask retrieval p50 ms: ${p50(retrieval)}`);
} finally {
  await gateway.close();
  await stack.close();
}

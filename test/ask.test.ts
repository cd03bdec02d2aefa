// `ask` against the real stack and the chat stand-in (dev/stack/chat-model-server.ts): the prompt LAYRA's
// create_chat_stream would send for the same stored conversation, the turn as LAYRA's add_turn saves it,
// stop and resume across gateways, model failures, the outbound (SSRF) policy, ownership and limits.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";
import { createClient } from "graphql-ws";
import sharp from "sharp";
import WebSocket from "ws";
import { defaultSettings, layraId, LayraWriter, layraTurn } from "../dev/layra-writer.js";
import { answerFor, reasoningFor, REFUSED_API_KEY, type RecordedRequest } from "../dev/stack/chat-model-server.js";
import { createLogger } from "../src/observability/logger.js";
import { outboundRules } from "../src/stores/outbound-fetch.js";
import type { ModelSettings, TurnDoc } from "../src/stores/documents.js";
import { sseSubscribe } from "./fixtures/subscribers.js";
import { eventually, sharedStackEnv, startGateway, type TestGateway } from "./helpers.js";
import { PAGE_CODES_PREFIX } from "../src/stores/page-code-objects.js";

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any
const API_KEY = "sk-ask-test-0123456789abcdef";

const EVENT = `type messageId conversationId last delta skippedKnowledgeBaseIds
  pages { score knowledgeBaseId fileName imageUrl fileUrl }
  usage { totalTokens completionTokens promptTokens } error { code message }
  turn { messageId parentMessageId status aiMessage totalTokens completionTokens promptTokens }`;
const ASK = `subscription Ask($conversationId: String!, $question: String!, $parentMessageId: String, $tempDb: String) {
  ask(conversationId: $conversationId, question: $question, parentMessageId: $parentMessageId, tempDb: $tempDb) { ${EVENT} } }`;
const FOLLOW = `subscription Follow($messageId: String!) { answer(messageId: $messageId) { ${EVENT} } }`;

let shared: Awaited<ReturnType<typeof sharedStackEnv>>;
let gateway: TestGateway;
let second: TestGateway;
let writer: LayraWriter;
const logLines: string[] = [];
let chatUrl: string;
/** The stand-in's own address (its requests list and redirects). */
let chatRoot: string;

before(async () => {
  shared = await sharedStackEnv();
  chatUrl = shared.env.CHAT_MODEL_URL!;
  chatRoot = chatUrl.replace(/\/v1$/, "");
  const logger = createLogger({ logLevel: "debug" }, { write: (line: string) => void logLines.push(line) });
  gateway = await startGateway(shared.env, { LOG_LEVEL: "debug" }, { logger });
  // A second replica on the same stores: another database name would be another deployment.
  second = await startGateway(shared.env, {
    MONGODB_DB: gateway.config.mongo.database,
    MINIO_BUCKET_NAME: gateway.config.s3.bucket,
  });
  writer = new LayraWriter(gateway.app.stores, gateway.config.model.url);
});
after(async () => {
  await second.app.stop();
  await gateway.close();
  await shared.close();
});

interface Subscription {
  events: Json[];
  errors?: Json[];
  /** Resolves when the stream ends, however it ends. */
  done: Promise<void>;
  unsubscribe(): void;
  /** Drops the connection without a word, as a closed laptop does. */
  terminate(): void;
}

function subscribe(
  target: TestGateway,
  token: string,
  query: string,
  variables: Record<string, unknown>,
  onEvent?: (event: Json, subscription: Subscription) => void,
): Subscription {
  let socket: WebSocket | null = null;
  const client = createClient({
    url: `${target.url.replace(/^http/, "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    // The connection stays open after an unsubscribe, so the gateway sees an unsubscribe, not a drop.
    lazyCloseTimeout: 60_000,
    on: { connected: (connected) => (socket = connected as WebSocket) },
  });
  let unsubscribe = () => {};
  const subscription: Subscription = {
    events: [],
    done: Promise.resolve(),
    unsubscribe: () => unsubscribe(),
    terminate: () => socket?.terminate(),
  };
  subscription.done = new Promise<void>((resolve) => {
    unsubscribe = client.subscribe(
      { query, variables },
      {
        next: (result: Json) => {
          if (result.errors) subscription.errors = result.errors;
          const event = result.data && Object.values(result.data)[0];
          if (event) {
            subscription.events.push(event);
            onEvent?.(event, subscription);
          }
        },
        error: (error) => {
          subscription.errors = Array.isArray(error) ? error : [{ message: String((error as Json)?.reason ?? error) }];
          resolve();
        },
        complete: () => resolve(),
      },
    );
  }).finally(() => void client.dispose());
  return subscription;
}

async function askAndWait(target: TestGateway, token: string, variables: Record<string, unknown>) {
  const subscription = subscribe(target, token, ASK, variables);
  await subscription.done;
  return subscription;
}

const requests = async (): Promise<RecordedRequest[]> => (await fetch(`${chatRoot}/requests`)).json() as never;
/** The stand-in's request whose question text contains `marker`. */
async function requestWith(marker: string): Promise<RecordedRequest> {
  const found = (await requests()).filter((request) => JSON.stringify(request.body.messages.at(-1)).includes(marker));
  assert.equal(found.length, 1, `one request asked ${marker}`);
  return found[0]!;
}

const settings = (overrides: Partial<ModelSettings> = {}) =>
  defaultSettings({ model_name: "stand-in", model_url: chatUrl, api_key: API_KEY, ...overrides });

const rawConversation = async (conversationId: string) =>
  (await gateway.app.stores.mongo.db.collection("conversations").findOne({ conversation_id: conversationId })) as Json;

const dataUrl = async (key: string) =>
  `data:image/png;base64,${(await gateway.app.stores.s3.getObject(key))!.toString("base64")}`;

test("the prompt is the one LAYRA's chat would send, and the turn is saved as LAYRA's add_turn saves it", async () => {
  const kb = await writer.createKnowledgeBase("ann", "fruit");
  const file = await writer.ingestFile("ann", kb.knowledge_base_id, {
    filename: "fruit.pdf",
    pages: [{ text: "apple banana cherry" }, { text: "banana smoothie" }, { text: "unrelated words here" }],
  });
  const historyImage = file.images[2]!.minio_filename;
  // A chain t1 <- t2 <- t3 <- t4 and a sibling of t4: LAYRA's depth 5 reaches t2..t4, the branch only.
  const t1 = layraTurn("first question");
  const t2 = layraTurn("second question", { parent: t1.message_id, pageKey: historyImage });
  const t3 = layraTurn("third question", { parent: t2.message_id });
  const t4 = layraTurn("fourth question", { parent: t3.message_id });
  const sibling = layraTurn("a sibling", { parent: t3.message_id });
  const conversation = await writer.createConversation(
    "ann",
    "prompt",
    [t1, t2, t3, t4, sibling],
    settings({
      base_used: [{ name: "fruit", baseId: kb.knowledge_base_id }],
      system_prompt: "Be brief.",
      temperature: 0.5,
      max_length: 500, // clamped to 1024
      top_P: -1, // left out
      top_K: 2,
      score_threshold: 0,
    }),
  );
  const token = await gateway.token("ann");
  const question = `banana ${layraId("q")}`;
  const asked = await askAndWait(gateway, token, {
    conversationId: conversation.conversation_id,
    question,
    parentMessageId: t4.message_id,
  });
  assert.equal(asked.errors, undefined, JSON.stringify(asked.errors));
  const types = asked.events.map((event) => event.type);
  assert.deepEqual(
    [types[0], types[1], types.at(-2), types.at(-1)],
    ["STARTED", "PAGES", "USAGE", "TURN"],
    types.join(","),
  );
  assert.ok(
    types.slice(2, -2).every((type) => type === "TEXT"),
    types.join(","),
  );
  const messageId = asked.events[0].messageId;
  assert.ok(asked.events.every((event) => event.messageId === messageId && !event.last === (event.type !== "TURN")));

  // What LAYRA would send: retrieval as the gateway's exact search ranks it, then its message layout.
  const search = await gateway.query<Json>(
    `query($ids: [String!]!, $q: String!) { searchKnowledgeBases(knowledgeBaseIds: $ids, query: $q, topK: 2, scoreThreshold: 0) { score page { imageId } } }`,
    { token, variables: { ids: [kb.knowledge_base_id], q: question } },
  );
  assert.equal(search.errors, undefined, JSON.stringify(search.errors));
  const hits = search.data.searchKnowledgeBases as { score: number; page: { imageId: string } }[];
  assert.equal(hits.length, 2);
  const hitImages = hits.map((hit) => file.images.find((image) => image.images_id === hit.page.imageId)!);
  const userMessage = (turn: TurnDoc) => turn.user_message as Json;
  const withDataUrls = async (message: Json) => ({
    role: message.role,
    content: await Promise.all(
      message.content.map(async (part: Json) =>
        part.type === "image_url" ? { type: "image_url", image_url: { url: await dataUrl(part.image_url) } } : part,
      ),
    ),
  });
  const expected = [
    { role: "system", content: [{ type: "text", text: "Be brief." }] },
    ...(
      await Promise.all(
        [t2, t3, t4].map(async (turn) => [await withDataUrls(userMessage(turn)), turn.ai_message] as Json[]),
      )
    ).flat(),
    await withDataUrls({
      role: "user",
      content: [
        ...hitImages.map((image) => ({ type: "image_url", image_url: image.minio_filename })),
        { type: "text", text: question },
      ],
    }),
  ];
  const request = await requestWith(question);
  assert.equal(request.apiKey, API_KEY);
  assert.deepEqual(
    { ...request.body, messages: undefined },
    {
      model: "stand-in",
      messages: undefined,
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.5,
      max_tokens: 1024,
    },
  );
  assert.deepEqual(request.body.messages, expected);

  const answer = asked.events
    .filter((event) => event.type === "TEXT")
    .map((event) => event.delta)
    .join("");
  assert.equal(answer, answerFor(request.body));
  assert.match(answer, /History: 6 \(user: second question/);
  const pages = asked.events[1].pages as Json[];
  assert.deepEqual(
    pages.map((page) => [page.score, page.knowledgeBaseId, page.fileName]),
    hits.map((hit) => [hit.score, kb.knowledge_base_id, "fruit.pdf"]),
  );
  assert.ok(pages.every((page) => page.imageUrl.includes("X-Amz-Signature") && !page.imageUrl.includes("192.168.1.5")));
  const usage = asked.events.at(-2).usage;

  const stored = (await rawConversation(conversation.conversation_id)).turns.at(-1);
  assert.deepEqual(Object.keys(stored).sort(), Object.keys(t1).sort(), "exactly add_turn's fields");
  assert.deepEqual(
    { ...stored, timestamp: undefined },
    {
      message_id: messageId,
      parent_message_id: t4.message_id,
      user_message: {
        role: "user",
        content: [
          ...hitImages.map((image) => ({ type: "image_url", image_url: image.minio_filename })),
          { type: "text", text: question },
        ],
      },
      temp_db: "",
      ai_message: { role: "assistant", content: answer },
      file_used: hits.map((hit, i) => ({
        score: hit.score,
        knowledge_db_id: kb.knowledge_base_id,
        file_name: "fruit.pdf",
        image_url: hitImages[i]!.minio_url,
        file_url: file.minio_url,
      })),
      status: "completed",
      timestamp: undefined,
      total_token: usage.totalTokens,
      completion_tokens: usage.completionTokens,
      prompt_tokens: usage.promptTokens,
    },
  );
  assert.ok(stored.timestamp instanceof Date);
  assert.equal(asked.events.at(-1).turn.aiMessage, answer);
  // The saved turn reads back through the gateway like any LAYRA turn.
  const read = await gateway.query<Json>(
    `query($id: String!) { conversation(conversationId: $id) { turns(last: 1) { edges { node { messageId status } } } } }`,
    { token, variables: { id: conversation.conversation_id } },
  );
  assert.equal(read.errors, undefined, JSON.stringify(read.errors));
  assert.deepEqual(read.data.conversation.turns.edges.at(-1).node, { messageId, status: "completed" });
});

test("a reasoning model's deltas come first and are saved in <think>…</think> before the answer", async () => {
  const conversation = await writer.createConversation(
    "ann",
    "reasoning",
    [],
    settings({ model_name: "r1 reasoning" }),
  );
  const question = `why ${layraId("q")}`;
  const asked = await askAndWait(gateway, await gateway.token("ann"), {
    conversationId: conversation.conversation_id,
    question,
  });
  assert.equal(asked.errors, undefined, JSON.stringify(asked.errors));
  const text = (type: string) =>
    asked.events
      .filter((event) => event.type === type)
      .map((event) => event.delta)
      .join("");
  const types = asked.events.map((event) => event.type);
  assert.ok(types.lastIndexOf("REASONING") < types.indexOf("TEXT"), types.join(","));
  assert.equal(text("REASONING"), reasoningFor(await requestWith(question).then((request) => request.body)));
  const stored = (await rawConversation(conversation.conversation_id)).turns[0];
  assert.equal(stored.ai_message.content, `<think>${text("REASONING")}</think>${text("TEXT")}`);
  // No bases: no retrieval, and the message has the question only.
  assert.deepEqual(stored.user_message.content, [{ type: "text", text: question }]);
});

test("a model quiet for longer than the store timeout keeps its followers (their reads block longer on purpose)", async () => {
  // STORE_TIMEOUT_MS is 2 s in tests; this model says nothing for 2.5 s.
  const conversation = await writer.createConversation("ann", "late", [], settings({ model_name: "stand-in late" }));
  const asked = await askAndWait(gateway, await gateway.token("ann"), {
    conversationId: conversation.conversation_id,
    question: "late",
  });
  assert.equal(asked.errors, undefined, JSON.stringify(asked.errors));
  assert.equal(asked.events.at(-1).turn.status, "completed");
});

test("a stop from a second gateway ends the answer as aborted, saved once with LAYRA's marker", async () => {
  const conversation = await writer.createConversation("ann", "stop", [], settings({ model_name: "stand-in slow" }));
  const token = await gateway.token("ann");
  let stopped: Promise<Json> | null = null;
  const asked = subscribe(
    gateway,
    token,
    ASK,
    { conversationId: conversation.conversation_id, question: "stop me" },
    (event) => {
      if (event.type === "TEXT" && !stopped)
        stopped = second.query(`mutation($id: String!) { stopAnswer(messageId: $id) }`, {
          token,
          variables: { id: event.messageId },
        });
    },
  );
  await asked.done;
  const stop = await stopped!;
  assert.equal(stop.errors, undefined, JSON.stringify(stop.errors));
  assert.equal(stop.data.stopAnswer, true);
  const last = asked.events.at(-1);
  assert.equal(last.type, "TURN");
  assert.equal(last.turn.status, "aborted");
  const streamed = asked.events
    .filter((event) => event.type === "TEXT")
    .map((event) => event.delta)
    .join("");
  assert.equal(last.turn.aiMessage, `${streamed} ⚠️ Abort By User`);
  assert.ok(
    !last.turn.aiMessage.startsWith(answerFor({ model: "", messages: [{ role: "user", content: "stop me" }] })),
  );
  const doc = await rawConversation(conversation.conversation_id);
  assert.equal(doc.turns.length, 1);
  assert.equal(doc.turns[0].status, "aborted");
});

test("unsubscribing while connected stops the answer; a dropped connection does not, and another gateway follows it", async () => {
  const token = await gateway.token("ann");
  const leaving = await writer.createConversation("ann", "leave", [], settings({ model_name: "stand-in slow" }));
  const left = subscribe(
    gateway,
    token,
    ASK,
    { conversationId: leaving.conversation_id, question: "leave" },
    (event, subscription) => event.type === "TEXT" && subscription.unsubscribe(),
  );
  await left.done;
  await eventually(async () => (await rawConversation(leaving.conversation_id)).turns.length === 1, "the turn saved");
  assert.equal((await rawConversation(leaving.conversation_id)).turns[0].status, "aborted");

  const dropping = await writer.createConversation("ann", "drop", [], settings({ model_name: "stand-in slow" }));
  const dropped = subscribe(
    gateway,
    token,
    ASK,
    { conversationId: dropping.conversation_id, question: "drop" },
    (event, subscription) => event.type === "TEXT" && subscription.terminate(),
  );
  await dropped.done;
  const messageId = dropped.events[0].messageId;
  const followed = subscribe(second, token, FOLLOW, { messageId });
  await followed.done;
  assert.equal(followed.errors, undefined, JSON.stringify(followed.errors));
  assert.deepEqual(followed.events[0], { ...dropped.events[0] }, "from the answer's first event");
  const last = followed.events.at(-1);
  assert.equal(last.type, "TURN");
  assert.equal(last.turn.status, "completed");
  assert.equal(
    last.turn.aiMessage,
    followed.events
      .filter((event) => event.type === "TEXT")
      .map((event) => event.delta)
      .join(""),
  );
  assert.equal((await rawConversation(dropping.conversation_id)).turns.length, 1);
  // Another user cannot follow or stop it: the same answer as for an id that does not exist.
  const bob = await second.token("bob");
  const foreign = subscribe(second, bob, FOLLOW, { messageId });
  await foreign.done;
  const missing = subscribe(second, bob, FOLLOW, { messageId: "00000000-0000-4000-8000-000000000000" });
  await missing.done;
  assert.equal(foreign.errors?.[0]?.extensions?.code, "NOT_FOUND");
  assert.equal(
    foreign.errors?.[0]?.message.replace(messageId, "ID"),
    missing.errors?.[0]?.message.replace(/"[^"]+"/, '"ID"'),
  );
  const stop = await second.query<Json>(`mutation($id: String!) { stopAnswer(messageId: $id) }`, {
    token: bob,
    variables: { id: messageId },
  });
  assert.equal(stop.errors?.[0]?.extensions?.code, "NOT_FOUND");
});

test("over SSE a closed request does not stop the answer: it runs to its end and is saved; stopAnswer still stops one", async () => {
  const token = await gateway.token("ann");
  type AskResult = { ask?: { type: string; messageId: string } };
  /** An ask over SSE whose request is closed once its first TEXT event arrived; its message id. */
  const closedAfterFirstText = async (conversationId: string, question: string) => {
    const sse = sseSubscribe<AskResult>(gateway.url, token, ASK, { conversationId, question });
    await eventually(() => sse.results.some((result) => result.data?.ask?.type === "TEXT"), "the first TEXT event");
    sse.close();
    assert.equal(sse.results[0]?.errors, undefined, JSON.stringify(sse.results[0]));
    return sse.results[0]!.data!.ask!.messageId;
  };
  const savedTurn = async (conversationId: string) => {
    await eventually(async () => (await rawConversation(conversationId)).turns.length === 1, "the turn saved", 60_000);
    return (await rawConversation(conversationId)).turns[0];
  };

  const closing = await writer.createConversation("ann", "sse close", [], settings({ model_name: "stand-in slow" }));
  await closedAfterFirstText(closing.conversation_id, "sse close");
  const completed = await savedTurn(closing.conversation_id);
  assert.equal(completed.status, "completed", "an unsubscribe over SSE cannot be told from a drop: the answer runs on");
  assert.doesNotMatch(completed.ai_message.content, /Abort By User/);

  const stopping = await writer.createConversation("ann", "sse stop", [], settings({ model_name: "stand-in slow" }));
  const messageId = await closedAfterFirstText(stopping.conversation_id, "sse stop");
  const stop = await second.query<{ stopAnswer: boolean }>(`mutation($id: String!) { stopAnswer(messageId: $id) }`, {
    token,
    variables: { id: messageId },
  });
  assert.equal(stop.errors, undefined, JSON.stringify(stop.errors));
  const aborted = await savedTurn(stopping.conversation_id);
  assert.equal(aborted.status, "aborted");
  assert.match(aborted.ai_message.content, /Abort By User$/);
});

test("model down, key refused, stream cut, error event: the subscriber is told, the turn saved with LAYRA's error text", async () => {
  const token = await gateway.token("ann");
  const cases = [
    { name: "down", overrides: { model_url: "http://127.0.0.1:9/v1" }, code: "MODEL_UNAVAILABLE", texts: 0 },
    { name: "refused", overrides: { api_key: REFUSED_API_KEY }, code: "MODEL_REFUSED", texts: 0 },
    { name: "cut", overrides: { model_name: "stand-in cut" }, code: "MODEL_UNAVAILABLE", texts: 3 },
    { name: "error", overrides: { model_name: "stand-in error" }, code: "MODEL_UNAVAILABLE", texts: 3 },
  ];
  for (const { name, overrides, code, texts } of cases) {
    const conversation = await writer.createConversation("ann", name, [], settings(overrides));
    const asked = await askAndWait(gateway, token, { conversationId: conversation.conversation_id, question: name });
    assert.equal(asked.errors, undefined, `${name}: ${JSON.stringify(asked.errors)}`);
    const error = asked.events.find((event) => event.type === "ERROR");
    assert.equal(error?.error.code, code, name);
    const streamed = asked.events
      .filter((event) => event.type === "TEXT")
      .map((event) => event.delta)
      .join("");
    // Deltas written while a write is pending are merged: what counts is whether any text came.
    assert.equal(streamed.length > 0, texts > 0, name);
    const doc = await rawConversation(conversation.conversation_id);
    assert.equal(doc.turns.length, 1, `${name}: one turn`);
    assert.equal(
      doc.turns[0].ai_message.content,
      `${streamed}⚠️ **Error occurred**:\n \`\`\`LLM_Error\n${error.error.message}\n \`\`\``,
      name,
    );
    assert.equal(doc.turns[0].status, "completed", "LAYRA saves a failed answer as completed");
    assert.equal(asked.events.at(-1).type, "TURN");
    const seen = JSON.stringify(asked.events);
    for (const secret of [API_KEY, REFUSED_API_KEY, "127.0.0.1"])
      assert.ok(!seen.includes(secret), `${name}: ${secret}`);
  }
  const logs = logLines.join("\n");
  for (const secret of [API_KEY, REFUSED_API_KEY]) assert.ok(!logs.includes(secret), `${secret} in the log`);
  const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
  assert.match(metrics, /ask_errors_total\{class="MODEL_REFUSED"\} [1-9]/);
  assert.match(metrics, /ask_answers_total\{outcome="completed"\} [1-9]/);
  assert.match(metrics, /ask_time_to_first_token_seconds_count [1-9]/);
  assert.ok(!metrics.includes(API_KEY) && !metrics.includes('"ann"'));
});

test("internal model URLs are refused after DNS and on redirects, unless allowed", async () => {
  const strict = await startGateway(shared.env, {
    CHAT_MODEL_ALLOWED_HOSTS: "",
    MONGODB_DB: gateway.config.mongo.database,
    MINIO_BUCKET_NAME: gateway.config.s3.bucket,
  });
  const byName = await startGateway(shared.env, {
    CHAT_MODEL_ALLOWED_HOSTS: "localhost",
    MONGODB_DB: gateway.config.mongo.database,
    MINIO_BUCKET_NAME: gateway.config.s3.bucket,
  });
  try {
    const port = new URL(chatUrl).port;
    const loopbackTarget = encodeURIComponent(`http://127.0.0.1:${port}/v1/chat/completions`);
    const cases: [TestGateway, string, "MODEL_URL_REFUSED" | null][] = [
      [strict, `http://127.0.0.1:${port}/v1`, "MODEL_URL_REFUSED"],
      [strict, "http://169.254.169.254/v1", "MODEL_URL_REFUSED"],
      [strict, "http://10.1.2.3/v1", "MODEL_URL_REFUSED"],
      [strict, `http://[::ffff:127.0.0.1]:${port}/v1`, "MODEL_URL_REFUSED"],
      [strict, `http://localhost:${port}/v1`, "MODEL_URL_REFUSED"], // a name that resolves to loopback
      [byName, `http://localhost:${port}/redirect/${loopbackTarget}/v1`, "MODEL_URL_REFUSED"],
      [byName, `http://localhost:${port}/v1`, null], // the allowed name itself
    ];
    const token = await strict.token("ann");
    for (const [target, modelUrl, code] of cases) {
      const conversation = await writer.createConversation("ann", "ssrf", [], settings({ model_url: modelUrl }));
      const question = `ssrf ${layraId("q")}`;
      const asked = await askAndWait(target, token, { conversationId: conversation.conversation_id, question });
      assert.equal(asked.errors, undefined, JSON.stringify(asked.errors));
      const error = asked.events.find((event) => event.type === "ERROR")?.error;
      assert.equal(error?.code ?? null, code, modelUrl);
      if (code) {
        assert.doesNotMatch(error.message, /127\.0\.0\.1|169\.254|10\.1\.2\.3|localhost|::ffff/, modelUrl);
        assert.equal((await requests()).filter((r) => JSON.stringify(r.body).includes(question)).length, 0);
      }
    }
  } finally {
    await strict.app.stop();
    await byName.app.stop();
  }
});

test("outbound rules: every internal range refused, allowed networks and names honoured", () => {
  const rules = outboundRules([]);
  for (const address of [
    "127.0.0.1",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "100.100.100.200",
    "0.0.0.0",
    "::",
    "::1",
    "fe80::1",
    "fd00:ec2::254",
    "::ffff:10.0.0.1",
    "64:ff9b::a00:1",
  ])
    assert.notEqual(rules.refusal(address), null, address);
  for (const address of ["8.8.8.8", "2606:4700:4700::1111"]) assert.equal(rules.refusal(address), null, address);
  const allowed = outboundRules(["10.0.0.0/8", "fd00::1", "Model.Internal"]);
  assert.equal(allowed.refusal("10.2.3.4"), null);
  assert.equal(allowed.refusal("fd00::1"), null);
  assert.notEqual(allowed.refusal("192.168.0.1"), null);
  assert.ok(allowed.isAllowedName("model.internal."));
});

test("another user's conversation is refused like a missing one; another user's base is skipped and named", async () => {
  const anns = await writer.createConversation("ann", "mine", [], settings());
  const bobToken = await gateway.token("bob");
  const foreign = await askAndWait(gateway, bobToken, { conversationId: anns.conversation_id, question: "hi" });
  const missing = await askAndWait(gateway, bobToken, { conversationId: layraId("ann"), question: "hi" });
  assert.equal(foreign.errors?.[0]?.extensions?.code, "NOT_FOUND");
  assert.equal(missing.errors?.[0]?.extensions?.code, "NOT_FOUND");
  assert.equal(foreign.events.length + missing.events.length, 0);
  assert.equal((await rawConversation(anns.conversation_id)).turns.length, 0);

  const annsBase = await writer.createKnowledgeBase("ann", "not bob's");
  const gone = layraId("bob");
  const bobs = await writer.createConversation(
    "bob",
    "skips",
    [],
    settings({
      base_used: [
        { name: "ann's", baseId: annsBase.knowledge_base_id },
        { name: "gone", baseId: gone },
      ],
    }),
  );
  const asked = await askAndWait(gateway, bobToken, { conversationId: bobs.conversation_id, question: "hi" });
  assert.equal(asked.errors, undefined, JSON.stringify(asked.errors));
  assert.deepEqual(asked.events[1].skippedKnowledgeBaseIds, [annsBase.knowledge_base_id, gone]);
  assert.deepEqual(asked.events[1].pages, []);
  assert.equal(asked.events.at(-1).turn.status, "completed");
});

test("bounds: question length, running answers per user, total time; a conversation deleted meanwhile gets no turn", async () => {
  const bounded = await startGateway(shared.env, {
    ASK_MAX_ANSWERS_PER_USER: "1",
    ASK_MAX_DURATION_MS: "1500",
    MONGODB_DB: gateway.config.mongo.database,
    MINIO_BUCKET_NAME: gateway.config.s3.bucket,
  });
  try {
    const token = await bounded.token("cy");
    const conversation = await writer.createConversation(
      "cy",
      "bounds",
      [],
      settings({ model_name: "stand-in endless" }),
    );
    const tooLong = await askAndWait(bounded, token, {
      conversationId: conversation.conversation_id,
      question: "x".repeat(bounded.config.ask.maxQuestionChars + 1),
    });
    assert.equal(tooLong.errors?.[0]?.extensions?.code, "BAD_USER_INPUT");
    // The slot is claimed while the conversation is read: an ask it refuses gives the slot back, or the
    // limit of one would refuse the next ask below.
    const missing = await askAndWait(bounded, token, { conversationId: "no-such-conversation", question: "hi" });
    assert.equal(missing.errors?.[0]?.extensions?.code, "NOT_FOUND", JSON.stringify(missing.errors));
    let second: Subscription | null = null;
    const endless = subscribe(
      bounded,
      token,
      ASK,
      { conversationId: conversation.conversation_id, question: "forever" },
      (event) => {
        if (event.type === "TEXT" && !second)
          second = subscribe(bounded, token, ASK, { conversationId: conversation.conversation_id, question: "again" });
      },
    );
    await endless.done;
    assert.equal(endless.errors, undefined, JSON.stringify(endless.errors));
    await second!.done;
    assert.equal(second!.errors?.[0]?.extensions?.code, "LIMIT_EXCEEDED", JSON.stringify(second!.errors));
    const error = endless.events.find((event) => event.type === "ERROR");
    assert.equal(error?.error.code, "TIME_LIMIT");
    assert.equal(endless.events.at(-1).turn.status, "completed");
    assert.equal((await rawConversation(conversation.conversation_id)).turns.length, 1);

    // On a gateway without the short time bound: the slow answer takes seconds.
    const unbounded = await gateway.token("cy");
    const deleted = await writer.createConversation("cy", "deleted", [], settings({ model_name: "stand-in slow" }));
    let deletion: Promise<Json> | null = null;
    const asked = subscribe(
      gateway,
      unbounded,
      ASK,
      { conversationId: deleted.conversation_id, question: "deleted meanwhile" },
      (event) => {
        if (event.type === "TEXT" && !deletion)
          deletion = gateway.query(`mutation($id: String!) { deleteConversation(conversationId: $id) }`, {
            token: unbounded,
            variables: { id: deleted.conversation_id },
          });
      },
    );
    await asked.done;
    assert.equal((await deletion!).errors, undefined);
    const last = asked.events.at(-1);
    assert.deepEqual([last.type, last.last, last.error?.code], ["ERROR", true, "NOT_FOUND"]);
    assert.equal(await rawConversation(deleted.conversation_id), null);
  } finally {
    await bounded.app.stop();
  }
});

test("page images over the bounds are scaled down to the per-image and per-prompt budgets before they are sent", async () => {
  const budget = await startGateway(shared.env, {
    ASK_IMAGE_MAX_PIXELS: "600000",
    ASK_PROMPT_MAX_IMAGE_BYTES: "1000000",
    MONGODB_DB: gateway.config.mongo.database,
    MINIO_BUCKET_NAME: gateway.config.s3.bucket,
  });
  try {
    const kb = await writer.createKnowledgeBase("dee", "scans");
    const file = await writer.ingestFile("dee", kb.knowledge_base_id, {
      filename: "scan.pdf",
      pages: [{ text: "noisy scan one" }, { text: "noisy scan two" }],
    });
    // Noise does not compress: each page is a ~3.6 MB PNG of 1.2 M pixels.
    for (const image of file.images) {
      const noise = await sharp(randomBytes(1200 * 1000 * 3), { raw: { width: 1200, height: 1000, channels: 3 } })
        .png()
        .toBuffer();
      await gateway.app.stores.s3.putObject(image.minio_filename, noise, "image/png");
    }
    const conversation = await writer.createConversation(
      "dee",
      "bounded",
      [],
      settings({ base_used: [{ name: "scans", baseId: kb.knowledge_base_id }], top_K: 2, score_threshold: 0 }),
    );
    const question = `noisy scan ${layraId("q")}`;
    const asked = await askAndWait(budget, await budget.token("dee"), {
      conversationId: conversation.conversation_id,
      question,
    });
    assert.equal(asked.errors, undefined, JSON.stringify(asked.errors));
    assert.equal(asked.events.at(-1).turn.status, "completed");
    const images = ((await requestWith(question)).body.messages.at(-1)!.content as Json[]).filter(
      (part) => part.type === "image_url",
    );
    assert.equal(images.length, 2, "both pages sent, scaled down");
    for (const part of images) {
      const bytes = Buffer.from(part.image_url.url.replace(/^data:image\/png;base64,/, ""), "base64");
      const { width, height, format } = await sharp(bytes).metadata();
      assert.equal(format, "png");
      assert.ok(width * height <= 600_000, `${width}x${height} within the pixel bound`);
      assert.ok(bytes.length <= 500_000, `${bytes.length} bytes within half the prompt's budget`);
    }
  } finally {
    await budget.app.stop();
  }
});

test("each answer reports its phases as tracing spans, the model's until its first delta", async () => {
  const phases: { name: string; ended: boolean }[] = [];
  const traced = await startGateway(
    shared.env,
    { MONGODB_DB: gateway.config.mongo.database, MINIO_BUCKET_NAME: gateway.config.s3.bucket },
    {
      tracing: {
        startSpan: (name) => {
          const span = { name, ended: false };
          if (name.startsWith("ask ")) phases.push(span);
          return { end: () => void (span.ended = true) };
        },
      },
    },
  );
  try {
    const conversation = await writer.createConversation("eve", "phases", [], settings());
    const asked = await askAndWait(traced, await traced.token("eve"), {
      conversationId: conversation.conversation_id,
      question: "which phases",
    });
    assert.equal(asked.errors, undefined, JSON.stringify(asked.errors));
    assert.equal(asked.events.at(-1).turn.status, "completed");
    assert.deepEqual(
      phases.map((span) => [span.name, span.ended]),
      [
        ["ask start", true],
        ["ask retrieval", true],
        ["ask images", true],
        ["ask model", true],
      ],
    );
  } finally {
    await traced.app.stop();
  }
});

test("shutdown: new asks are refused, a running answer finishes and is saved; one past ASK_DRAIN_MS is saved aborted", async () => {
  const onStores = { MONGODB_DB: gateway.config.mongo.database, MINIO_BUCKET_NAME: gateway.config.s3.bucket };
  // A slow answer (seconds) within a generous drain: the stop waits for it.
  const draining = await startGateway(shared.env, { ...onStores, ASK_DRAIN_MS: "60000" });
  const token = await draining.token("fay");
  const finishing = await writer.createConversation("fay", "finish", [], settings({ model_name: "stand-in slow" }));
  let stopped: Promise<void> | null = null;
  let refused: Subscription | null = null;
  const asked = subscribe(
    draining,
    token,
    ASK,
    { conversationId: finishing.conversation_id, question: "finish me" },
    (event) => {
      if (event.type !== "TEXT" || stopped) return;
      stopped = draining.app.stop();
      refused = subscribe(draining, token, ASK, { conversationId: finishing.conversation_id, question: "too late" });
    },
  );
  await asked.done;
  await stopped!;
  await refused!.done;
  assert.equal(refused!.errors?.[0]?.extensions?.code, "UPSTREAM_UNAVAILABLE", JSON.stringify(refused!.errors));
  assert.equal(asked.errors, undefined, JSON.stringify(asked.errors));
  assert.equal(asked.events.at(-1).type, "TURN");
  const saved = (await rawConversation(finishing.conversation_id)).turns;
  assert.deepEqual(
    saved.map((turn: TurnDoc) => [turn.status, turn.ai_message.content]),
    [["completed", answerFor({ model: "", messages: [{ role: "user", content: "finish me" }] })]],
  );

  // An endless answer past a short drain: stopped and saved as LAYRA saves an aborted turn.
  const short = await startGateway(shared.env, { ...onStores, ASK_DRAIN_MS: "300" });
  const endless = await writer.createConversation("fay", "endless", [], settings({ model_name: "stand-in endless" }));
  let shortStop: Promise<void> | null = null;
  const cut = subscribe(
    short,
    await short.token("fay"),
    ASK,
    { conversationId: endless.conversation_id, question: "never ends" },
    (event) => {
      if (event.type === "TEXT" && !shortStop) shortStop = short.app.stop();
    },
  );
  await cut.done;
  await shortStop!;
  const turns = (await rawConversation(endless.conversation_id)).turns;
  assert.equal(turns.length, 1);
  assert.equal(turns[0].status, "aborted");
  assert.ok(turns[0].ai_message.content.endsWith(" ⚠️ Abort By User"), turns[0].ai_message.content);
});

test("a page image is sent from the cache by key and bound when retrieval finds it again; a history image is read again", async () => {
  const cached = await startGateway(shared.env, {
    MONGODB_DB: gateway.config.mongo.database,
    MINIO_BUCKET_NAME: gateway.config.s3.bucket,
  });
  try {
    const reads: string[] = [];
    const s3 = cached.app.stores.s3;
    const getObject = s3.getObject.bind(s3);
    // Page images only: a search whose cache lacks the base also reads its files' page codes.
    s3.getObject = (key, maxBytes) => {
      if (!key.startsWith(PAGE_CODES_PREFIX)) reads.push(key);
      return getObject(key, maxBytes);
    };
    const kb = await writer.createKnowledgeBase("gus", "cached");
    const file = await writer.ingestFile("gus", kb.knowledge_base_id, {
      filename: "cached.pdf",
      pages: [{ text: "cached page" }],
    });
    const page = file.images[0]!.minio_filename;
    const conversation = await writer.createConversation(
      "gus",
      "cached",
      [],
      settings({ base_used: [{ name: "cached", baseId: kb.knowledge_base_id }], top_K: 1, score_threshold: 0 }),
    );
    const token = await cached.token("gus");
    const imagesSent = async (question: string) =>
      (await requestWith(question)).body.messages
        .flatMap((message): Json[] => (typeof message.content === "string" ? [] : message.content))
        .filter((part) => part.type === "image_url")
        .map((part) => part.image_url.url as string);

    const first = `cached page ${layraId("q")}`;
    const asked = await askAndWait(cached, token, { conversationId: conversation.conversation_id, question: first });
    assert.equal(asked.errors, undefined, JSON.stringify(asked.errors));
    assert.deepEqual(reads, [page]);
    assert.deepEqual(await imagesSent(first), [await dataUrl(page)]);

    // Found again by a new root turn: sent as before, not read.
    const again = `cached page ${layraId("q")}`;
    const second = await askAndWait(cached, token, { conversationId: conversation.conversation_id, question: again });
    assert.equal(second.errors, undefined, JSON.stringify(second.errors));
    assert.deepEqual(reads, [page]);
    assert.deepEqual(await imagesSent(again), await imagesSent(first));

    // In the history (and found again), the object is read: deleted meanwhile, it is left out.
    await cached.app.stores.s3.removeObjects([page]);
    const followUp = `cached page ${layraId("q")}`;
    const third = await askAndWait(cached, token, {
      conversationId: conversation.conversation_id,
      question: followUp,
      parentMessageId: asked.events.at(-1).turn.messageId,
    });
    assert.equal(third.errors, undefined, JSON.stringify(third.errors));
    assert.deepEqual(reads, [page, page]);
    assert.deepEqual(await imagesSent(followUp), []);
  } finally {
    await cached.app.stop();
  }
});

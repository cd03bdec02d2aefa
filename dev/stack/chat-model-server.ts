// A deterministic stand-in for an OpenAI-compatible chat model (the `model_url` of LAYRA's model settings), for
// tests, benchmarks and the local demo. `POST /v1/chat/completions` with `stream: true` answers Server-Sent Events
// in OpenAI's chunk format: an answer that quotes what it received (the question, each image's size and digest,
// the history), `reasoning_content` deltas first when the model name contains "reasoning", and a usage chunk when
// `stream_options.include_usage` is set. Every request is recorded; `GET /requests` lists them (newest last).
//
// Test controls, as words in the model name (combinable): "slow" waits 150 ms between chunks, "cut" drops the
// connection after three answer chunks, "error" sends an error event after three answer chunks, "endless" never
// ends (a chunk every 50 ms until the client leaves), "late" waits 2.5 s before its first chunk. The API key
// "sk-refused" is answered 401.
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { pngTextChunks } from "./model-server.js";

export const REFUSED_API_KEY = "sk-refused";
const SLOW_CHUNK_MS = 150;
const LATE_FIRST_CHUNK_MS = 2_500;
const ENDLESS_CHUNK_MS = 50;
const FAIL_AFTER_CHUNKS = 3;
/** Recorded requests kept; older ones are dropped. */
const MAX_RECORDED = 200;

type Part = { type: "text"; text: string } | { type: "image_url"; image_url: { url: string } };
interface ChatMessage {
  role: string;
  content: string | Part[];
}
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  temperature?: number;
  max_tokens?: number;
  top_p?: number;
}
export interface RecordedRequest {
  /** The bearer token the request carried. */
  apiKey: string;
  path: string;
  body: ChatRequest;
}

/** A PNG data: URL described by its size and digest (and its `layra-text` chunk when it kept one). */
function describeImage(url: string): string {
  const match = /^data:image\/[a-z]+;base64,(.*)$/s.exec(url);
  if (!match) return "not a data: URL";
  const bytes = Buffer.from(match[1]!, "base64");
  const digest = createHash("sha256").update(bytes).digest("hex").slice(0, 12);
  const size = bytes.length >= 24 ? `${bytes.readUInt32BE(16)}x${bytes.readUInt32BE(20)}` : "?x?";
  const text = pngTextChunks(bytes).get("layra-text");
  return `png ${size} ${digest}${text ? ` "${text}"` : ""}`;
}

const textOf = (content: string | Part[]) =>
  typeof content === "string"
    ? content
    : content
        .flatMap((part) => (part.type === "text" ? [part.text] : []))
        .join(" ")
        .trim();
const imagesOf = (content: string | Part[]) =>
  typeof content === "string" ? [] : content.flatMap((part) => (part.type === "image_url" ? [part.image_url.url] : []));

/** The answer to a request: the question, the question's images, and the history between system prompt and question. */
export function answerFor(body: ChatRequest): string {
  const messages = body.messages ?? [];
  const question = messages.at(-1);
  const history = messages.slice(0, -1).filter((message) => message.role !== "system");
  const images = question ? imagesOf(question.content).map(describeImage) : [];
  const quoted = history.map((message) => `${message.role}: ${textOf(message.content).slice(0, 60)}`);
  return [
    `You asked: ${question ? textOf(question.content) : ""}`,
    `Pages: ${images.length}${images.length ? ` (${images.join("; ")})` : ""}`,
    `History: ${history.length}${quoted.length ? ` (${quoted.join(" | ")})` : ""}`,
  ].join("\n");
}

export const reasoningFor = (body: ChatRequest) => `Thinking about ${textOf(body.messages?.at(-1)?.content ?? "")}.`;

/** Words with their following whitespace: the deltas of a streamed text. */
const pieces = (text: string) => text.match(/\S+\s*|\s+/g) ?? [];

function promptTokens(body: ChatRequest): number {
  let tokens = 0;
  for (const message of body.messages ?? []) {
    tokens += pieces(textOf(message.content)).length + imagesOf(message.content).length * 100;
  }
  return tokens;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  return Buffer.concat(parts).toString("utf8");
}

function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(payload));
}

async function streamAnswer(req: IncomingMessage, res: ServerResponse, body: ChatRequest): Promise<void> {
  const words = new Set(body.model.toLowerCase().split(/[^a-z]+/));
  const id = `chatcmpl-${createHash("sha256").update(JSON.stringify(body)).digest("hex").slice(0, 16)}`;
  const created = Math.floor(Date.now() / 1000);
  let left = false;
  req.socket.once("close", () => (left = true));
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const send = async (payload: unknown) => {
    if (words.has("slow")) await sleep(SLOW_CHUNK_MS);
    res.write(`data: ${JSON.stringify(payload)}\n\n`);
  };
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
    send({
      id,
      object: "chat.completion.chunk",
      created,
      model: body.model,
      choices: [{ index: 0, delta, finish_reason: finish }],
    });

  if (words.has("late")) await sleep(LATE_FIRST_CHUNK_MS);
  await chunk({ role: "assistant", content: "" });
  const reasoning = words.has("reasoning") ? pieces(reasoningFor(body)) : [];
  for (const piece of reasoning) await chunk({ reasoning_content: piece });
  const answer = pieces(answerFor(body));
  let sent = 0;
  for (const piece of answer) {
    await chunk({ content: piece });
    sent++;
    if (sent === FAIL_AFTER_CHUNKS && words.has("cut")) {
      // After a pause: a connection dropped together with its last bytes may lose them in the client.
      await sleep(SLOW_CHUNK_MS);
      res.socket?.destroy();
      return;
    }
    if (sent === FAIL_AFTER_CHUNKS && words.has("error")) {
      await send({ error: { message: "the stand-in failed mid-stream", type: "server_error", code: null } });
      res.end();
      return;
    }
  }
  while (words.has("endless") && !left) {
    await sleep(ENDLESS_CHUNK_MS);
    await chunk({ content: "more " });
  }
  if (left) return;
  await chunk({}, "stop");
  if (body.stream_options?.include_usage) {
    const completion = reasoning.length + answer.length;
    const prompt = promptTokens(body);
    await send({
      id,
      object: "chat.completion.chunk",
      created,
      model: body.model,
      choices: [],
      usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
    });
  }
  res.end("data: [DONE]\n\n");
}

async function startChatModelServer(
  port = 0,
  host = "127.0.0.1",
): Promise<{ server: Server; url: string; requests: RecordedRequest[] }> {
  const requests: RecordedRequest[] = [];
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "").split("?")[0]!;
    if (req.method === "GET" && path === "/healthy-check") return sendJson(res, 200, { status: "UP" });
    if (req.method === "GET" && path === "/requests") return sendJson(res, 200, requests);
    // `/redirect/{target}/...`: a 307 to the URL-encoded target, for tests of the gateway's redirect checks.
    const redirect = /^\/redirect\/([^/]+)\//.exec(path);
    if (redirect) {
      res.writeHead(307, { location: decodeURIComponent(redirect[1]!) });
      return res.end();
    }
    if (req.method !== "POST" || !path.endsWith("/chat/completions"))
      return sendJson(res, 404, { error: { message: "not found" } });
    const apiKey = (req.headers.authorization ?? "").replace(/^Bearer /, "");
    const body = JSON.parse(await readBody(req)) as ChatRequest;
    requests.push({ apiKey, path, body });
    if (requests.length > MAX_RECORDED) requests.shift();
    if (apiKey === REFUSED_API_KEY)
      return sendJson(res, 401, {
        error: { message: "Incorrect API key provided", type: "invalid_request_error", code: "invalid_api_key" },
      });
    if (!body.stream) {
      return sendJson(res, 200, {
        id: "chatcmpl-stand-in",
        object: "chat.completion",
        model: body.model,
        choices: [{ index: 0, message: { role: "assistant", content: answerFor(body) }, finish_reason: "stop" }],
      });
    }
    await streamAnswer(req, res, body);
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: { message: String(error) } });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const address = server.address() as AddressInfo;
  return { server, url: `http://${host}:${address.port}`, requests };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env.PORT ?? 8006);
  const { url } = await startChatModelServer(port);
  console.log(`chat model server listening on ${url}`);
}

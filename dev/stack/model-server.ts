// A deterministic stand-in for LAYRA's ColQwen model server (docs/layra-contract.md, "Model server"), for tests and the
// local demo. Same routes and shapes: POST /embed_text {queries} and POST /embed_image
// (multipart field `images`) answer {embeddings: [[[128 floats] x tokens] x inputs]}.
//
// Every token vector is L2-normalised and derived from a hash, so the same input always gives the
// same vectors. Text is one vector per lower-cased word. An image is embedded from its bytes; when
// the image carries a PNG tEXt chunk `layra-text`, the words of that text become its first token
// vectors (so a text query finds the pages that "show" its words), and a tEXt chunk `layra-tokens`
// sets the number of token vectors (default: 100 + a hash-derived 0..27).
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export const EMBEDDING_DIM = 128;

/** A unit vector derived from `seed` (xorshift over the seed's SHA-256). */
export function seededUnitVector(seed: string): number[] {
  const digest = createHash("sha256").update(seed).digest();
  let state = digest.readUInt32LE(0) || 1;
  const vector = new Array<number>(EMBEDDING_DIM);
  let norm = 0;
  for (let i = 0; i < EMBEDDING_DIM; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    const value = state / 0xffffffff - 0.5;
    vector[i] = value;
    norm += value * value;
  }
  norm = Math.sqrt(norm);
  return vector.map((v) => v / norm);
}

export function embedText(text: string): number[][] {
  const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  return (words.length > 0 ? words : [""]).map((word) => seededUnitVector(`word:${word}`));
}

/** Reads the tEXt chunks of a PNG; anything that is not a PNG has none. */
export function pngTextChunks(png: Buffer): Map<string, string> {
  const chunks = new Map<string, string>();
  const signature = "89504e470d0a1a0a";
  if (png.length < 8 || png.subarray(0, 8).toString("hex") !== signature) return chunks;
  let offset = 8;
  while (offset + 8 <= png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString("latin1", offset + 4, offset + 8);
    const data = png.subarray(offset + 8, offset + 8 + length);
    if (type === "tEXt") {
      const separator = data.indexOf(0);
      if (separator > 0) chunks.set(data.toString("latin1", 0, separator), data.toString("utf8", separator + 1));
    }
    offset += 12 + length;
  }
  return chunks;
}

export function embedImage(image: Buffer): number[][] {
  const text = pngTextChunks(image);
  const digest = createHash("sha256").update(image).digest("hex");
  const requested = Number(text.get("layra-tokens"));
  const tokens =
    Number.isInteger(requested) && requested > 0 ? requested : 100 + (parseInt(digest.slice(0, 8), 16) % 28);
  const words = text.has("layra-text") ? embedText(text.get("layra-text") ?? "") : [];
  const vectors = words.slice(0, tokens);
  for (let i = vectors.length; i < tokens; i++) vectors.push(seededUnitVector(`patch:${digest}:${i}`));
  return vectors;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** The file parts of a multipart/form-data body named `field`. */
export function multipartFiles(body: Buffer, contentType: string, field: string): Buffer[] {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  if (!boundary) return [];
  const delimiter = Buffer.from(`--${boundary[1] ?? boundary[2]}`);
  const files: Buffer[] = [];
  let start = body.indexOf(delimiter);
  while (start !== -1) {
    const next = body.indexOf(delimiter, start + delimiter.length);
    if (next === -1) break;
    const part = body.subarray(start + delimiter.length + 2, next - 2);
    const headerEnd = part.indexOf("\r\n\r\n");
    if (headerEnd !== -1) {
      const headers = part.toString("utf8", 0, headerEnd);
      if (new RegExp(`name="${field}"`).test(headers)) files.push(part.subarray(headerEnd + 4));
    }
    start = next;
  }
  return files;
}

function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(payload));
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method === "GET" && req.url === "/healthy-check") {
    return sendJson(res, 200, { status: "UP", details: "All systems operational" });
  }
  if (req.method === "POST" && req.url === "/embed_text") {
    const body = JSON.parse((await readBody(req)).toString("utf8")) as { queries?: unknown };
    if (!Array.isArray(body.queries) || !body.queries.every((q) => typeof q === "string")) {
      return sendJson(res, 422, { detail: "queries must be a list of strings" });
    }
    return sendJson(res, 200, { embeddings: body.queries.map((q: string) => embedText(q)) });
  }
  if (req.method === "POST" && req.url === "/embed_image") {
    const images = multipartFiles(await readBody(req), req.headers["content-type"] ?? "", "images");
    if (images.length === 0) return sendJson(res, 422, { detail: "no images" });
    return sendJson(res, 200, { embeddings: images.map(embedImage) });
  }
  sendJson(res, 404, { detail: "Not Found" });
}

export async function startModelServer(port = 0, host = "127.0.0.1"): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => sendJson(res, 500, { detail: String(error) }));
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const address = server.address() as AddressInfo;
  return { server, url: `http://${host}:${address.port}` };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env.PORT ?? 8005);
  const { url } = await startModelServer(port);
  console.log(`model server listening on ${url}`);
}

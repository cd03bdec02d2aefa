// A deterministic, lexical stand-in for LAYRA's ColQwen model server (docs/layra-contract.md, "Model server"), for
// tests and the local demo. Same routes and shapes: POST /embed_text {queries} and POST /embed_image
// (multipart field `images`) answer {embeddings: [[[128 floats] x tokens] x inputs]}.
//
// Every token vector is L2-normalised and derived from a hash, so the same input always gives the
// same vectors. Text is one vector per lower-cased word. A page image is read with tesseract (OCR)
// and each distinct word it shows becomes one of its token vectors, the same vector /embed_text gives
// that word, so a query's words find the pages that show them; hash-derived "patch" vectors fill the
// rest (100 + a hash-derived 0..27 tokens at least). Test pages drawn by dev/png.ts skip the OCR:
// their tEXt chunk `layra-text` holds the words they stand for, and `layra-tokens` sets the number
// of token vectors.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import sharp from "sharp";

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

const wordsOf = (text: string) => text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];

export function embedText(text: string): number[][] {
  const words = wordsOf(text);
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

/** At most this many token vectors per page (ColQwen gives a page about a thousand). */
const MAX_PAGE_TOKENS = 1024;
/**
 * Pages are read at most this many pixels on their long side (about 120 DPI for A4): tesseract
 * reads body text as well there and costs about half what it does on a 200-DPI render.
 */
const OCR_LONG_SIDE = 1400;
const run = promisify(execFile);

/** The image could not be decoded: the caller sent something that is not a page image. */
class UnreadableImage extends Error {}

/**
 * The text on each page, in order, from one tesseract run over the batch (its start-up, loading the
 * English model, costs about as much as reading a page). One thread: the stack shares a few cores.
 */
export async function readPages(images: Buffer[]): Promise<string[]> {
  if (images.length === 0) return [];
  const folder = await mkdtemp(join(tmpdir(), "layra-ocr-"));
  try {
    const paths = await Promise.all(
      images.map(async (image, i) => {
        const path = join(folder, `page-${i}.png`);
        await sharp(image)
          .greyscale()
          .resize({ width: OCR_LONG_SIDE, height: OCR_LONG_SIDE, fit: "inside", withoutEnlargement: true })
          .png()
          .toFile(path)
          .catch((error: unknown) => {
            throw new UnreadableImage(`image ${i} is not an image: ${String(error)}`);
          });
        return path;
      }),
    );
    await writeFile(join(folder, "pages.txt"), paths.join("\n") + "\n");
    const { stdout } = await run("tesseract", [join(folder, "pages.txt"), "stdout"], {
      env: { ...process.env, OMP_THREAD_LIMIT: "1" },
      maxBuffer: 64 * 1024 * 1024,
    }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") throw new Error("tesseract is not installed: run bash dev/stack/install.sh");
      throw error;
    });
    // tesseract puts a form feed between pages.
    const pages = stdout.split("\f");
    if (pages.length !== images.length) throw new Error(`tesseract read ${pages.length} pages of ${images.length}`);
    return pages;
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/** A page's token vectors: one per distinct word it shows, then patch vectors up to its token count. */
function pageVectors(image: Buffer, text: string, requestedTokens: number | undefined): number[][] {
  const digest = createHash("sha256").update(image).digest("hex");
  const words = [...new Set(wordsOf(text))].slice(0, MAX_PAGE_TOKENS);
  const tokens = requestedTokens ?? Math.max(100 + (parseInt(digest.slice(0, 8), 16) % 28), words.length);
  const vectors = words.slice(0, tokens).map((word) => seededUnitVector(`word:${word}`));
  for (let i = vectors.length; i < tokens; i++) vectors.push(seededUnitVector(`patch:${digest}:${i}`));
  return vectors;
}

/** The token vectors of each image: test pages by their `layra-text` chunk, every other page by OCR. */
export async function embedImages(images: Buffer[]): Promise<number[][][]> {
  const chunks = images.map(pngTextChunks);
  const toRead = images.filter((_, i) => !chunks[i]!.has("layra-text"));
  const read = await readPages(toRead);
  let nextRead = 0;
  return images.map((image, i) => {
    const text = chunks[i]!.get("layra-text") ?? read[nextRead++]!;
    const requested = Number(chunks[i]!.get("layra-tokens"));
    return pageVectors(image, text, Number.isInteger(requested) && requested > 0 ? requested : undefined);
  });
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
    try {
      return sendJson(res, 200, { embeddings: await embedImages(images) });
    } catch (error) {
      if (error instanceof UnreadableImage) return sendJson(res, 422, { detail: error.message });
      throw error;
    }
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

import { setTimeout as sleep } from "node:timers/promises";
import type { Config } from "../config.js";
import { UpstreamUnavailable, errorMessage } from "../errors.js";
import { probe, type StoreHealth } from "./health.js";

/** The longest pause between two tries of a model-server request that keeps failing. */
const MAX_RETRY_DELAY_MS = 10_000;

/** LAYRA's embedding server (docs/layra-contract.md, "Model server"): ColQwen token vectors for a text query. */
export interface ModelStore {
  /** The query's token vectors: `embeddings[0]` of `POST /embed_text {queries: [text]}`. */
  embedText(text: string): Promise<number[][]>;
  /**
   * One list of token vectors per page: `POST /embed_image`, multipart field `images` repeated, each
   * named `{filename}_{i}.png` with type image/png, as LAYRA sends them (`i` counts from `firstIndex`).
   */
  embedImages(pages: Buffer[], filename: string, firstIndex: number): Promise<number[][][]>;
  health(): Promise<StoreHealth>;
  close(): Promise<void>;
}

export function createModelStore(config: Config): ModelStore {
  const { url, timeoutMs, retryPatienceMs } = config.model;

  /**
   * Tries `request` again while the server cannot be reached or answers 5xx (it is restarting), 0.5 s
   * after the first try and twice as long each time, until `retryPatienceMs` has passed; then answers
   * the last response or fails UPSTREAM_UNAVAILABLE.
   */
  async function withPatience(path: string, request: () => Promise<Response>): Promise<Response> {
    const giveUpAt = Date.now() + retryPatienceMs;
    for (let delayMs = 500; ; delayMs = Math.min(2 * delayMs, MAX_RETRY_DELAY_MS)) {
      const lastTry = () => Date.now() + delayMs > giveUpAt;
      try {
        const response = await request();
        if (response.status < 500 || lastTry()) return response;
        await response.body?.cancel();
      } catch (error) {
        if (lastTry()) throw new UpstreamUnavailable("model", `${path}: ${errorMessage(error)}`);
      }
      await sleep(delayMs);
    }
  }

  async function post(path: string, body: unknown): Promise<Response> {
    try {
      return await fetch(`${url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new UpstreamUnavailable("model", errorMessage(error));
    }
  }

  return {
    embedText: async (text) => {
      let response = await post("/embed_text", { queries: [text] });
      // One retry on a server error: the model server restarts workers under memory pressure.
      if (response.status >= 500) response = await post("/embed_text", { queries: [text] });
      if (!response.ok) throw new UpstreamUnavailable("model", `/embed_text answered HTTP ${response.status}`);
      const payload = (await response.json()) as { embeddings?: unknown };
      const first = Array.isArray(payload.embeddings) ? payload.embeddings[0] : undefined;
      if (!Array.isArray(first)) throw new UpstreamUnavailable("model", "/embed_text answered without embeddings");
      return first as number[][];
    },
    embedImages: async (pages, filename, firstIndex) => {
      const form = new FormData();
      pages.forEach((page, i) =>
        form.append(
          "images",
          new Blob([new Uint8Array(page)], { type: "image/png" }),
          `${filename}_${firstIndex + i}.png`,
        ),
      );
      // LAYRA waits up to 1200 s for a batch; the configured timeout applies per page here.
      const response = await withPatience("/embed_image", () =>
        fetch(`${url}/embed_image`, {
          method: "POST",
          body: form,
          signal: AbortSignal.timeout(timeoutMs * Math.max(1, pages.length)),
        }),
      );
      if (!response.ok) throw new UpstreamUnavailable("model", `/embed_image answered HTTP ${response.status}`);
      const payload = (await response.json()) as { embeddings?: unknown };
      if (!Array.isArray(payload.embeddings) || payload.embeddings.length !== pages.length)
        throw new UpstreamUnavailable("model", "/embed_image answered without one embedding per image");
      return payload.embeddings as number[][][];
    },
    health: () =>
      probe("model", async () => {
        const response = await fetch(`${url}/healthy-check`, { signal: AbortSignal.timeout(config.storeTimeoutMs) });
        if (!response.ok) throw new Error(`/healthy-check answered HTTP ${response.status}`);
      }),
    close: async () => {},
  };
}

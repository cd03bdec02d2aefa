import type { Config } from "../config.js";
import { UpstreamUnavailable, errorMessage } from "../errors.js";
import { probe, type StoreHealth } from "./health.js";

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
  const { url, timeoutMs } = config.model;

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
      let response: Response;
      try {
        // LAYRA waits up to 1200 s for a batch; the configured timeout applies per page here.
        response = await fetch(`${url}/embed_image`, {
          method: "POST",
          body: form,
          signal: AbortSignal.timeout(timeoutMs * Math.max(1, pages.length)),
        });
      } catch (error) {
        throw new UpstreamUnavailable("model", errorMessage(error));
      }
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

// What an answer sends the chat model, built as LAYRA's ChatService.create_chat_stream builds it (docs/ask.md,
// "The prompt"): the conversation's settings clamped, the parent chain as history, the question with its
// retrieved pages, and every page image read from S3 as a data: URL, bounded in pixels and bytes.
import { LRUCache } from "lru-cache";
import pLimit from "p-limit";
import sharp from "sharp";
import type { StoreAccess } from "../context.js";
import type { ModelSettings, TurnDoc, UserContentPart } from "../stores/documents.js";
import { isOwnObjectKey } from "../lib/layra-ids.js";

/** The settings an answer uses: LAYRA's clamps applied, -1 kept where the provider's default applies. */
/** LAYRA's ceiling on the pages one answer retrieves (top_K). */
export const MAX_TOP_K = 30;

export interface ChatSettings {
  modelName: string;
  modelUrl: string;
  apiKey: string;
  baseIds: string[];
  systemPrompt: string;
  temperature: number;
  maxLength: number;
  topP: number;
  topK: number;
  scoreThreshold: number;
}

const MAX_SYSTEM_PROMPT = 1_048_576;

/** A stored number, or -1 (the provider's default) when LAYRA's client left it out or stored something else. */
const numberOr = (value: unknown) => (typeof value === "number" && Number.isFinite(value) ? value : -1);
const clamp = (value: number, min: number, max: number) =>
  value === -1 ? -1 : value < min ? min : value > max ? max : value;

/** LAYRA's use-time clamps (docs/layra-contract.md, "Model settings and clamps"). */
export function chatSettings(stored: Partial<ModelSettings>): ChatSettings {
  const topK = numberOr(stored.top_K);
  const scoreThreshold = numberOr(stored.score_threshold);
  return {
    modelName: typeof stored.model_name === "string" ? stored.model_name : "",
    modelUrl: typeof stored.model_url === "string" ? stored.model_url : "",
    apiKey: typeof stored.api_key === "string" ? stored.api_key : "",
    baseIds: Array.isArray(stored.base_used)
      ? stored.base_used.flatMap((ref) => (typeof ref?.baseId === "string" ? [ref.baseId] : []))
      : [],
    systemPrompt: typeof stored.system_prompt === "string" ? stored.system_prompt.slice(0, MAX_SYSTEM_PROMPT) : "",
    temperature: clamp(numberOr(stored.temperature), 0, 1),
    maxLength: clamp(numberOr(stored.max_length), 1024, 1_048_576),
    topP: clamp(numberOr(stored.top_P), 0, 1),
    topK: topK === -1 ? 3 : Math.round(clamp(topK, 1, MAX_TOP_K)),
    scoreThreshold: scoreThreshold === -1 ? 10 : clamp(scoreThreshold, 0, 20),
  };
}

/** The SDK options LAYRA sets: only those not left at -1. */
export function modelOptions(settings: ChatSettings): { temperature?: number; max_tokens?: number; top_p?: number } {
  return {
    ...(settings.temperature !== -1 ? { temperature: settings.temperature } : {}),
    ...(settings.maxLength !== -1 ? { max_tokens: settings.maxLength } : {}),
    ...(settings.topP !== -1 ? { top_p: settings.topP } : {}),
  };
}

/** A message as stored in a turn: user content parts name page images by object key. */
export interface StoredMessage {
  role: string;
  content: string | UserContentPart[];
}

/**
 * LAYRA's find_depth_parent_mesage: from `parentId` up the parent chain, two messages per turn while fewer
 * than `depth` are collected (depth 5 reaches 3 turns), oldest first. A turn missing from the chain ends it.
 */
export function historyMessages(turns: readonly TurnDoc[], parentId: string, depth: number): StoredMessage[] {
  const byId = new Map(turns.map((turn) => [turn.message_id, turn]));
  const stack: StoredMessage[] = [];
  for (let id = parentId; id && stack.length < depth;) {
    const turn = byId.get(id);
    if (!turn) break;
    stack.push(
      { role: turn.ai_message?.role ?? "assistant", content: turn.ai_message?.content ?? "" },
      { role: turn.user_message?.role ?? "user", content: turn.user_message?.content ?? "" },
    );
    id = turn.parent_message_id;
  }
  return stack.reverse();
}

/** LAYRA's text for a failed answer (its `LLM_Error` block, spaces included). */
export const errorAnswer = (message: string) => `⚠️ **Error occurred**:\n \`\`\`LLM_Error\n${message}\n \`\`\``;
export const ABORT_MARK = " ⚠️ Abort By User";

/** The answer text as LAYRA assembles it: `<think>…</think>` before the answer when the model reasoned. */
export class AnswerText {
  private readonly thinking: string[] = [];
  private readonly parts: string[] = [];

  reasoning(delta: string): void {
    if (this.thinking.length === 0) this.thinking.push("<think>");
    this.thinking.push(delta);
  }

  text(delta: string): void {
    if (this.parts.length === 0 && this.thinking.length > 0) this.parts.push(...this.thinking, "</think>");
    this.parts.push(delta);
  }

  /** Ends with a marker (abort) or an error text; reasoning without an answer is kept, unclosed, as LAYRA does. */
  cut(ending: string): void {
    if (this.parts.length === 0 && this.thinking.length > 0) this.parts.push(...this.thinking);
    this.parts.push(ending);
  }

  /** The stored content; LAYRA's "No message received" error when nothing was kept. */
  content(): string {
    return this.parts.length > 0 ? this.parts.join("") : errorAnswer(" No message received from AI");
  }
}

export interface ImageBounds {
  maxPixels: number;
  maxBytes: number;
  promptMaxBytes: number;
}

type OutgoingPart = { type: "text"; text: string } | { type: "image_url"; image_url: { url: string } };
export interface OutgoingMessage {
  role: string;
  content: string | OutgoingPart[];
}

/** Attempts at scaling an image down to its byte share before it is left out. */
const SHRINK_ATTEMPTS = 4;

/**
 * An image within `maxPixels` and `maxBytes`: unchanged when it fits (so the prompt is byte-for-byte
 * LAYRA's), else scaled down and re-encoded as PNG; null when it cannot be read or made to fit.
 */
async function boundedImage(bytes: Buffer, maxPixels: number, maxBytes: number): Promise<Buffer | null> {
  let width: number;
  let height: number;
  try {
    ({ width, height } = await sharp(bytes).metadata());
  } catch {
    return null;
  }
  if (width * height <= maxPixels && bytes.length <= maxBytes) return bytes;
  let scale = Math.min(1, Math.sqrt(maxPixels / (width * height)));
  for (let attempt = 0; attempt < SHRINK_ATTEMPTS; attempt++) {
    const resized = await sharp(bytes)
      .resize(Math.max(1, Math.floor(width * scale)), Math.max(1, Math.floor(height * scale)))
      .png()
      .toBuffer();
    if (resized.length <= maxBytes) return resized;
    scale *= Math.sqrt(maxBytes / resized.length) * 0.9;
  }
  return null;
}

/** Images read at once while a prompt is built. */
const IMAGE_READS = 8;

/**
 * Each app's page images as bounded data: URLs (keyed by its stores): a page object never changes once
 * written, so its key and the bounds name one URL, and an answer neither reads, decodes nor re-encodes what
 * another one sent.
 */
const boundedByApp = new WeakMap<object, LRUCache<string, string>>();
function boundedCache(access: StoreAccess): LRUCache<string, string> | null {
  const maxSize = access.config.ask.imageCacheBytes;
  if (maxSize === 0) return null;
  let cache = boundedByApp.get(access.stores);
  if (!cache) {
    cache = new LRUCache<string, string>({ maxSize, sizeCalculation: (url, key) => url.length + key.length });
    boundedByApp.set(access.stores, cache);
  }
  return cache;
}

const imageKeysOf = (messages: StoredMessage[]) =>
  messages.flatMap((message) =>
    typeof message.content === "string"
      ? []
      : message.content.flatMap((part) => (part.type === "image_url" ? [part.image_url] : [])),
  );

/**
 * The page images of one prompt, read from S3 as soon as their keys are known (the history's while
 * retrieval runs), each once, IMAGE_READS at a time; only the caller's own objects are read.
 */
export class PromptImages {
  private readonly reads = new Map<string, Promise<Buffer | null>>();
  private readonly limit = pLimit(IMAGE_READS);
  private readonly cache: LRUCache<string, string> | null;

  constructor(
    private readonly access: StoreAccess,
    private readonly username: string,
  ) {
    this.cache = boundedCache(access);
  }

  /** Starts reading the messages' images (the history's, off the answer's path while retrieval runs). */
  prefetch(messages: StoredMessage[]): void {
    for (const key of imageKeysOf(messages)) void this.read(key);
  }

  private read(key: string): Promise<Buffer | null> {
    let read = this.reads.get(key);
    if (!read) {
      read = isOwnObjectKey(key, this.username)
        ? this.limit(() => this.access.stores.s3.getObject(key)).catch(() => null)
        : Promise.resolve(null);
      this.reads.set(key, read);
    }
    return read;
  }

  /**
   * The image's data: URL within the bounds, or null. A page retrieval has just found in Mongo comes from the
   * cache without a read; a prefetched (history) image is read again, so one deleted since is left out.
   */
  private async url(key: string, maxPixels: number, maxBytes: number): Promise<string | null> {
    // Before the cache, which every user's answers share.
    if (!isOwnObjectKey(key, this.username)) return null;
    const cacheKey = `${maxPixels}:${maxBytes}:${key}`;
    const unread = !this.reads.has(key) && this.cache?.get(cacheKey);
    if (unread) return unread;
    const bytes = await this.read(key);
    if (!bytes) return null;
    const cached = this.cache?.get(cacheKey);
    if (cached) return cached;
    const image = await boundedImage(bytes, maxPixels, maxBytes);
    if (!image) return null;
    const url = `data:image/png;base64,${image.toString("base64")}`;
    this.cache?.set(cacheKey, url);
    return url;
  }

  /**
   * LAYRA's replace_image_content: every image part's object key replaced by a data: URL of the image (always
   * labelled image/png, as LAYRA does). A key that is not the caller's, an object that is missing or
   * unreadable, and an image that cannot be made to fit are left out, as LAYRA leaves out an image it could
   * not download. The prompt's byte budget is shared equally by its images.
   */
  async messages(messages: StoredMessage[], bounds: ImageBounds): Promise<OutgoingMessage[]> {
    const keys = imageKeysOf(messages);
    const share = Math.min(bounds.maxBytes, Math.floor(bounds.promptMaxBytes / Math.max(1, keys.length)));
    const urls = new Map<string, string | null>();
    await Promise.all(
      [...new Set(keys)].map(async (key) => urls.set(key, await this.url(key, bounds.maxPixels, share))),
    );
    return messages.map((message) =>
      typeof message.content === "string"
        ? { role: message.role, content: message.content }
        : {
            role: message.role,
            content: message.content.flatMap((part): OutgoingPart[] => {
              if (part.type !== "image_url") return [part];
              const url = urls.get(part.image_url);
              return url ? [{ type: "image_url", image_url: { url } }] : [];
            }),
          },
    );
  }
}

// The chat model a conversation's settings name (`model_url`, `api_key`, `model_name`), called as LAYRA calls it:
// the official openai SDK, `stream: true` with `stream_options.include_usage`. Requests go through the checked
// fetch of src/stores/outbound-fetch.ts; failures become ChatModelFailed with the gateway's own words.
import OpenAI, {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  AuthenticationError,
  PermissionDeniedError,
} from "openai";
import type { Config } from "../config.js";
import { ChatModelFailed } from "../errors.js";
import { observeStoreCall } from "./observe.js";
import { createOutboundFetch } from "./outbound-fetch.js";

interface ChatModelRequest {
  baseUrl: string;
  apiKey: string;
  model: string;
  /** OpenAI chat messages (multimodal parts as LAYRA sends them). */
  messages: unknown[];
  /** temperature, max_tokens, top_p: only those the settings do not leave to the provider. */
  options: { temperature?: number; max_tokens?: number; top_p?: number };
  signal: AbortSignal;
}

type ChatDelta =
  | { kind: "reasoning"; text: string }
  | { kind: "text"; text: string }
  | { kind: "usage"; totalTokens: number; completionTokens: number; promptTokens: number };

export interface ChatModelStore {
  /** The model's deltas in order; ends when the model ends, throws ChatModelFailed, or the signal's abort error. */
  stream(request: ChatModelRequest): AsyncIterable<ChatDelta>;
}

/** The ChatModelFailed anywhere in an error's cause chain (the SDK wraps what fetch threw). */
function refusalIn(error: unknown): ChatModelFailed | null {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; depth++) {
    if (current instanceof ChatModelFailed) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return null;
}

/** The typed failure of an SDK error; the provider's own text is left out, as it may quote the key. */
function failure(error: unknown, timeoutMs: number): unknown {
  if (error instanceof APIUserAbortError) return error;
  const refusal = refusalIn(error);
  if (refusal) return refusal;
  if (error instanceof APIConnectionTimeoutError)
    return new ChatModelFailed("MODEL_TIMEOUT", `the model did not answer within ${timeoutMs} ms`);
  if (error instanceof AuthenticationError || error instanceof PermissionDeniedError)
    return new ChatModelFailed("MODEL_REFUSED", `the model refused the API key (HTTP ${error.status})`);
  if (error instanceof APIConnectionError) return new ChatModelFailed("MODEL_UNAVAILABLE", "the model is unreachable");
  if (error instanceof APIError)
    return new ChatModelFailed(
      "MODEL_UNAVAILABLE",
      error.status ? `the model answered HTTP ${error.status}` : "the model reported an error mid-stream",
    );
  // undici's "terminated": the connection closed before the stream ended.
  if (error instanceof TypeError) return new ChatModelFailed("MODEL_UNAVAILABLE", "the model's stream was cut");
  return error;
}

export function createChatModelStore(config: Config): ChatModelStore {
  const fetch = createOutboundFetch(config.chatModel);
  const { timeoutMs } = config.chatModel;
  return {
    async *stream(request) {
      const client = new OpenAI({
        apiKey: request.apiKey,
        baseURL: request.baseUrl,
        fetch,
        timeout: timeoutMs,
        // A retry would send the whole prompt again, images included; the answer's own time bound applies.
        maxRetries: 0,
      });
      let stream;
      try {
        stream = await observeStoreCall(
          "chatModel",
          () =>
            client.chat.completions.create(
              {
                model: request.model,
                messages: request.messages as OpenAI.Chat.ChatCompletionMessageParam[],
                stream: true,
                stream_options: { include_usage: true },
                ...request.options,
              },
              { signal: request.signal },
            ),
          "chat.completions",
        );
      } catch (error) {
        throw failure(error, timeoutMs);
      }
      try {
        for await (const chunk of stream) {
          const delta = chunk.choices[0]?.delta as { content?: string | null; reasoning_content?: string | null };
          if (chunk.choices.length > 0) {
            if (delta?.reasoning_content != null) yield { kind: "reasoning", text: delta.reasoning_content };
            if (delta?.content) yield { kind: "text", text: delta.content };
          } else if (chunk.usage) {
            yield {
              kind: "usage",
              totalTokens: chunk.usage.total_tokens,
              completionTokens: chunk.usage.completion_tokens,
              promptTokens: chunk.usage.prompt_tokens,
            };
          }
        }
      } catch (error) {
        throw failure(error, timeoutMs);
      }
    },
  };
}

import type { BaseUsed, ModelConfigDoc, ModelDoc, ModelSettings as ModelSettingsDoc } from "../stores/documents.js";
import { builder } from "./builder.js";
import { listSize } from "./lists.js";
import { capList } from "../lib/pagination.js";

const MAX_BASE_USED = 100;
const MAX_MODELS = 100;
import { KnowledgeBase } from "./knowledge-base.js";

// A conversation's `model_config` is whatever dict LAYRA's client sent (`{}` included), so every
// field read from it is nullable and type-checked: one odd document never fails its siblings.
const text = (value: unknown) => (typeof value === "string" ? value : null);
const finite = (value: unknown) => (typeof value === "number" && Number.isFinite(value) ? value : null);
const integer = (value: unknown) => (Number.isSafeInteger(value) ? (value as number) : null);
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const BaseUsedRef = builder.objectRef<Partial<BaseUsed>>("BaseUsed").implement({
  description: "A knowledge base a model retrieves from (`base_used[]`).",
  fields: (t) => ({
    name: t.string({ nullable: true, resolve: (ref) => text(ref.name) }),
    baseId: t.string({ nullable: true, resolve: (ref) => text(ref.baseId) }),
    knowledgeBase: t.field({
      type: KnowledgeBase,
      nullable: true,
      description: "Null when the reference dangles (LAYRA leaves it behind when a knowledge base is deleted).",
      resolve: (ref, _args, context) =>
        typeof ref.baseId === "string" ? context.loaders.knowledgeBase.load(ref.baseId) : null,
    }),
  }),
});

/** The last four characters, so a user can tell keys apart; the key itself is never returned. */
const apiKeyHint = (key: unknown) => (typeof key !== "string" ? null : key.length > 8 ? `…${key.slice(-4)}` : "…");

const ModelSettings = builder.interfaceRef<Partial<ModelSettingsDoc>>("ModelSettings").implement({
  description:
    "LLM settings in LAYRA's snake_case shape; -1 means the provider's default. A field is null when the stored settings lack it (LAYRA stores a conversation's settings as the client sent them).",
  // Resolved by the field that returns it, never by which optional keys a document happens to carry.
  resolveType: () => {
    throw new Error("ModelSettings is never returned as the interface itself");
  },
  fields: (t) => ({
    modelName: t.string({ nullable: true, resolve: (m) => text(m.model_name) }),
    modelUrl: t.string({ nullable: true, resolve: (m) => text(m.model_url) }),
    apiKeyHint: t.string({
      nullable: true,
      description: "The API key's last four characters only.",
      resolve: (m) => apiKeyHint(m.api_key),
    }),
    baseUsed: t.field({
      type: [BaseUsedRef],
      nullable: true,
      description: `At most ${MAX_BASE_USED} references.`,
      ...listSize(MAX_BASE_USED),
      resolve: (m) => (Array.isArray(m.base_used) ? capList(m.base_used.filter(isObject), MAX_BASE_USED) : null),
    }),
    systemPrompt: t.string({ nullable: true, resolve: (m) => text(m.system_prompt) }),
    temperature: t.float({ nullable: true, resolve: (m) => finite(m.temperature) }),
    maxLength: t.int({ nullable: true, resolve: (m) => integer(m.max_length) }),
    topP: t.float({ nullable: true, resolve: (m) => finite(m.top_P) }),
    topK: t.int({ nullable: true, resolve: (m) => integer(m.top_K) }),
    scoreThreshold: t.float({ nullable: true, resolve: (m) => finite(m.score_threshold) }),
  }),
});

export const Model = builder.objectRef<ModelDoc>("Model").implement({
  description: "One of the user's configured models.",
  interfaces: [ModelSettings],
  fields: (t) => ({ modelId: t.exposeString("model_id") }),
});

export const ConversationModelSettings = builder
  .objectRef<Partial<ModelSettingsDoc>>("ConversationModelSettings")
  .implement({
    description: "The model settings a conversation snapshotted when it was configured (any keys may be missing).",
    interfaces: [ModelSettings],
  });

export const ModelConfig = builder.objectRef<ModelConfigDoc>("ModelConfig").implement({
  fields: (t) => ({
    selectedModelId: t.exposeString("selected_model"),
    selectedModel: t.field({
      type: Model,
      nullable: true,
      resolve: (config) => config.models.find((model) => model.model_id === config.selected_model) ?? null,
    }),
    models: t.field({
      type: [Model],
      description: `At most ${MAX_MODELS} models.`,
      ...listSize(MAX_MODELS),
      resolve: (config) => capList(config.models, MAX_MODELS),
    }),
  }),
});

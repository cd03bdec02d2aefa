import type { BaseUsed, ModelConfigDoc, ModelDoc, ModelSettings as ModelSettingsDoc } from "../stores/documents.js";
import { builder } from "./builder.js";
import { KnowledgeBase } from "./knowledge-base.js";

const BaseUsedRef = builder.objectRef<BaseUsed>("BaseUsed").implement({
  description: "A knowledge base a model retrieves from (`base_used[]`).",
  fields: (t) => ({
    name: t.exposeString("name"),
    baseId: t.exposeString("baseId"),
    knowledgeBase: t.field({
      type: KnowledgeBase,
      nullable: true,
      description: "Null when the reference dangles (LAYRA leaves it behind when a knowledge base is deleted).",
      resolve: (ref, _args, context) => context.loaders.knowledgeBase.load(ref.baseId),
    }),
  }),
});

/** The last four characters, so a user can tell keys apart; the key itself is never returned. */
export const apiKeyHint = (key: string) => (key.length > 8 ? `…${key.slice(-4)}` : "…");

export const ModelSettings = builder.interfaceRef<ModelSettingsDoc>("ModelSettings").implement({
  description: "LLM settings in LAYRA's snake_case shape; -1 means the provider's default.",
  fields: (t) => ({
    modelName: t.exposeString("model_name"),
    modelUrl: t.exposeString("model_url"),
    apiKeyHint: t.string({
      description: "The API key's last four characters only.",
      resolve: (m) => apiKeyHint(m.api_key),
    }),
    baseUsed: t.field({ type: [BaseUsedRef], resolve: (m) => m.base_used }),
    systemPrompt: t.exposeString("system_prompt"),
    temperature: t.exposeFloat("temperature"),
    maxLength: t.exposeInt("max_length"),
    topP: t.exposeFloat("top_P"),
    topK: t.exposeInt("top_K"),
    scoreThreshold: t.exposeFloat("score_threshold"),
  }),
});

export const Model = builder.objectRef<ModelDoc>("Model").implement({
  description: "One of the user's configured models.",
  interfaces: [ModelSettings],
  isTypeOf: (value) => typeof value === "object" && value !== null && "model_id" in value,
  fields: (t) => ({ modelId: t.exposeString("model_id") }),
});

export const ConversationModelSettings = builder.objectRef<ModelSettingsDoc>("ConversationModelSettings").implement({
  description: "The model settings a conversation snapshotted when it was configured.",
  interfaces: [ModelSettings],
  isTypeOf: (value) => typeof value === "object" && value !== null && !("model_id" in value),
});

export const ModelConfig = builder.objectRef<ModelConfigDoc>("ModelConfig").implement({
  fields: (t) => ({
    selectedModelId: t.exposeString("selected_model"),
    selectedModel: t.field({
      type: Model,
      nullable: true,
      resolve: (config) => config.models.find((model) => model.model_id === config.selected_model) ?? null,
    }),
    models: t.field({ type: [Model], resolve: (config) => config.models }),
  }),
});

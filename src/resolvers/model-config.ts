// The caller's model config (docs/layra-contract.md, "model_config"), read from Mongo every time:
// LAYRA's backend writes it too and invalidates nothing, so no cache stands in between
// (docs/shared-writes.md, "model_config"). Edits of one model are guarded read-modify-writes in the
// repository, which keep the stored BSON type of every value they do not change.
import { randomUUID } from "node:crypto";
import type { Context, StoreAccess } from "../context.js";
import { BadUserInput, NotFound } from "../errors.js";
import type { BaseUsed, ModelConfigDoc, ModelDoc, ModelSettings } from "../stores/documents.js";
import { withKnowledgeBaseLocks } from "../stores/lock.js";
import { requireDefaultOrRange, requireName } from "../lib/input.js";

export const readModelConfig = (context: StoreAccess, username: string): Promise<ModelConfigDoc | null> =>
  context.stores.mongo.modelConfigs.find(username);

export interface ModelSettingsInput {
  modelName?: string | null;
  modelUrl?: string | null;
  apiKey?: string | null;
  baseUsed?: { name: string; baseId: string }[] | null;
  systemPrompt?: string | null;
  temperature?: number | null;
  maxLength?: number | null;
  topP?: number | null;
  topK?: number | null;
  scoreThreshold?: number | null;
}

const MAX_SYSTEM_PROMPT = 1_048_576;

/** Checks that every `base_used` entry names one of the caller's knowledge bases. */
async function checkBaseUsed(context: Context, baseUsed: BaseUsed[]): Promise<void> {
  const found = await context.loaders.knowledgeBase.loadMany(baseUsed.map((ref) => ref.baseId));
  const missing = baseUsed.find((_ref, i) => !found[i] || found[i] instanceof Error);
  if (missing) throw new NotFound("knowledge base", missing.baseId);
}

/** Merges validated input over `base` (LAYRA's snake_case settings); fields left out keep their value. */
export async function settingsFrom<S extends Partial<ModelSettings>>(
  context: Context,
  input: ModelSettingsInput,
  base: S,
): Promise<S> {
  const settings = { ...base };
  if (input.modelName != null) settings.model_name = requireName("modelName", input.modelName);
  if (input.modelUrl != null) {
    const url = input.modelUrl.trim();
    if (!/^https?:\/\/\S+$/.test(url) || url.length > 2_000)
      throw new BadUserInput("modelUrl", "must be an http(s) URL of at most 2000 characters");
    settings.model_url = url;
  }
  if (input.apiKey != null) {
    if (input.apiKey.length > 1_000) throw new BadUserInput("apiKey", "must be at most 1000 characters");
    settings.api_key = input.apiKey;
  }
  if (input.baseUsed != null) {
    const baseUsed = input.baseUsed.map((ref) => ({ name: ref.name.trim(), baseId: ref.baseId }));
    if (baseUsed.length > 100) throw new BadUserInput("baseUsed", "must name at most 100 knowledge bases");
    await checkBaseUsed(context, baseUsed);
    settings.base_used = baseUsed;
  }
  if (input.systemPrompt != null) {
    if (input.systemPrompt.length > MAX_SYSTEM_PROMPT)
      throw new BadUserInput("systemPrompt", `must be at most ${MAX_SYSTEM_PROMPT} characters`);
    settings.system_prompt = input.systemPrompt;
  }
  // LAYRA's use-time clamps (docs/layra-contract.md, "Model settings and clamps"), enforced here
  // instead of silently applied later.
  if (input.temperature != null) settings.temperature = requireDefaultOrRange("temperature", input.temperature, 0, 1);
  if (input.maxLength != null)
    settings.max_length = requireDefaultOrRange("maxLength", input.maxLength, 1024, 1_048_576);
  if (input.topP != null) settings.top_P = requireDefaultOrRange("topP", input.topP, 0, 1);
  if (input.topK != null) settings.top_K = requireDefaultOrRange("topK", input.topK, 1, 30);
  if (input.scoreThreshold != null)
    settings.score_threshold = requireDefaultOrRange("scoreThreshold", input.scoreThreshold, 0, 20);
  return settings;
}

/**
 * Writes settings that name knowledge bases (`base_used`) holding those bases' locks, with the
 * references whose base is gone by then left out: deleteKnowledgeBase removes references under
 * the same locks, so no write can leave one dangling behind it.
 */
export async function withBaseUsedLocked<S extends Partial<ModelSettings>, T>(
  context: Context,
  username: string,
  settings: S,
  write: (settings: S) => Promise<T>,
): Promise<T> {
  const refs = Array.isArray(settings.base_used) ? settings.base_used : [];
  if (refs.length === 0) return write(settings);
  const ids = [...new Set(refs.map((ref) => ref.baseId))];
  return withKnowledgeBaseLocks(context, ids, async () => {
    const live = await context.stores.mongo.knowledgeBases.findByIds(username, ids);
    const liveIds = new Set(live.map((kb) => kb.knowledge_base_id));
    return write({ ...settings, base_used: refs.filter((ref) => liveIds.has(ref.baseId)) });
  });
}

/** LAYRA's registration defaults (docs/layra-contract.md, "model_config"): the base of a new model's settings. */
export const DEFAULT_SETTINGS: ModelSettings = {
  model_name: "qwen2.5-vl-32b-instruct",
  model_url: "https://dashscope.aliyuncs.com/compatible-mode/v1",
  api_key: "sk-default-xxx",
  base_used: [],
  system_prompt: "You are a helpful assistant.",
  temperature: -1,
  max_length: -1,
  top_P: -1,
  top_K: -1,
  score_threshold: -1,
};

/** Adds a model (`{username}_{uuid4}`); it is selected when none is (a user without a model-config document gets one). */
export async function addModel(context: Context, username: string, input: ModelSettingsInput): Promise<ModelDoc> {
  if (input.modelName == null || input.modelUrl == null)
    throw new BadUserInput("input", "modelName and modelUrl are required");
  const settings = await settingsFrom(context, input, DEFAULT_SETTINGS);
  return withBaseUsedLocked(context, username, settings, async (locked) => {
    const model: ModelDoc = { model_id: `${username}_${randomUUID()}`, ...locked };
    await context.stores.mongo.modelConfigs.addModel(username, model);
    return model;
  });
}

export async function updateModel(
  context: Context,
  username: string,
  modelId: string,
  input: ModelSettingsInput,
): Promise<ModelDoc> {
  const current = (await context.stores.mongo.modelConfigs.find(username))?.models.find((m) => m.model_id === modelId);
  if (!current) throw new NotFound("model", modelId);
  // Validated once, outside the retry loop (it may look up knowledge bases).
  const validated = await settingsFrom(context, input, current);
  return withBaseUsedLocked(context, username, validated, async (settings) => {
    const doc = await context.stores.mongo.modelConfigs.updateModels(username, (config) => {
      if (!config.models.some((m) => m.model_id === modelId)) throw new NotFound("model", modelId);
      return {
        selected_model: config.selected_model,
        models: config.models.map((m) => (m.model_id === modelId ? { ...m, ...settings, model_id: modelId } : m)),
      };
    });
    return doc.models.find((m) => m.model_id === modelId)!;
  });
}

export async function selectModel(context: Context, username: string, modelId: string): Promise<ModelConfigDoc> {
  if (!(await context.stores.mongo.modelConfigs.select(username, modelId))) throw new NotFound("model", modelId);
  return (await readModelConfig(context, username))!;
}

/** Deletes a model; when it was the selected one, the first remaining model is selected, or none (""). */
export function deleteModel(context: Context, username: string, modelId: string): Promise<ModelConfigDoc> {
  return context.stores.mongo.modelConfigs.updateModels(username, (config) => {
    if (!config.models.some((m) => m.model_id === modelId)) throw new NotFound("model", modelId);
    const models = config.models.filter((m) => m.model_id !== modelId);
    const selected =
      config.selected_model === modelId || !models.some((m) => m.model_id === config.selected_model)
        ? (models[0]?.model_id ?? "")
        : config.selected_model;
    return { models, selected_model: selected };
  });
}

/**
 * Removes a deleted knowledge base from every `model_config.models[].base_used` and every
 * conversation's `model_config.base_used` snapshot (LAYRA leaves both dangling).
 */
export async function removeBaseUsedReferences(context: StoreAccess, knowledgeBaseId: string): Promise<void> {
  const { modelConfigs, conversations } = context.stores.mongo;
  for (const username of await modelConfigs.usersReferencingBase(knowledgeBaseId)) {
    await modelConfigs.updateModels(username, (config) =>
      config.models.some((m) => m.base_used.some((ref) => ref.baseId === knowledgeBaseId))
        ? {
            selected_model: config.selected_model,
            models: config.models.map((m) => ({
              ...m,
              base_used: m.base_used.filter((ref) => ref.baseId !== knowledgeBaseId),
            })),
          }
        : null,
    );
  }
  for (const conversation of await conversations.findBaseUsedSnapshots(knowledgeBaseId)) {
    // A snapshot is the client's dict as LAYRA stored it: base_used may be missing or odd.
    const baseUsed = conversation.model_config.base_used;
    const refs = Array.isArray(baseUsed) ? baseUsed.filter((ref) => ref?.baseId === knowledgeBaseId) : [];
    if (refs.length > 0) await conversations.pullBaseUsed(conversation.conversation_id, refs);
  }
}

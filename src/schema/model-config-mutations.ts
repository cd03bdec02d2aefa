import { addModel, deleteModel, selectModel, updateModel } from "../resolvers/model-config.js";
import { builder } from "./builder.js";
import { Model, ModelConfig } from "./model-config.js";

const BaseUsedInput = builder.inputType("BaseUsedInput", {
  fields: (t) => ({
    name: t.string({ required: true }),
    baseId: t.string({ required: true, description: "One of the caller's knowledge-base ids." }),
  }),
});

export const ModelSettingsInput = builder.inputType("ModelSettingsInput", {
  description:
    "LAYRA's model settings; a field left out keeps its current value (LAYRA's defaults for a new model). -1 means the provider's default.",
  fields: (t) => ({
    modelName: t.string(),
    modelUrl: t.string({ description: "An OpenAI-compatible base URL, http(s)." }),
    apiKey: t.string(),
    baseUsed: t.field({ type: [BaseUsedInput] }),
    systemPrompt: t.string(),
    temperature: t.float({ description: "-1, or 0..1" }),
    maxLength: t.int({ description: "-1, or 1024..1048576" }),
    topP: t.float({ description: "-1, or 0..1" }),
    topK: t.int({ description: "-1, or 1..30" }),
    scoreThreshold: t.int({ description: "-1, or 0..20" }),
  }),
});

builder.mutationFields((fields) => {
  const t = fields.withAuth({ loggedIn: true });
  return {
    addModel: t.field({
      nullable: true,
      type: Model,
      description: "Adds a model (id `{username}_{uuid4}`); modelName and modelUrl are required.",
      args: { input: t.arg({ type: ModelSettingsInput, required: true }) },
      resolve: (_root, args, context) => addModel(context, context.viewer.username, args.input),
    }),
    updateModel: t.field({
      nullable: true,
      type: Model,
      args: { modelId: t.arg.string({ required: true }), input: t.arg({ type: ModelSettingsInput, required: true }) },
      resolve: (_root, args, context) => updateModel(context, context.viewer.username, args.modelId, args.input),
    }),
    selectModel: t.field({
      nullable: true,
      type: ModelConfig,
      args: { modelId: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => selectModel(context, context.viewer.username, args.modelId),
    }),
    deleteModel: t.field({
      nullable: true,
      type: ModelConfig,
      description: "Deletes a model; if it was selected, the first remaining model is selected, or none.",
      args: { modelId: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => deleteModel(context, context.viewer.username, args.modelId),
    }),
  };
});

// `model_config`: one document per user, their models and the selected one.
import type { Collection } from "mongodb";
import type { ModelConfigDoc, ModelDoc } from "../documents.js";
import { NO_ID, observer } from "./collection.js";

export type ModelsState = Pick<ModelConfigDoc, "models" | "selected_model">;

export function modelConfigRepository(collection: Collection<ModelConfigDoc>) {
  const call = observer(collection);
  return {
    find: (username: string) => call("find", () => collection.findOne({ username }, { projection: NO_ID })),
    /** Appends a model (creating the document, with it selected, when there is none), then selects it if none is. */
    addModel: async (username: string, model: ModelDoc) => {
      await call("addModel", () =>
        collection.updateOne(
          { username },
          { $push: { models: model }, $setOnInsert: { username, selected_model: model.model_id } },
          { upsert: true },
        ),
      );
      // A config left with no selected model (its last one deleted) selects the one added.
      await call("selectIfNone", () =>
        collection.updateOne({ username, selected_model: "" }, { $set: { selected_model: model.model_id } }),
      );
    },
    /** False when the caller has no model of that id. */
    select: (username: string, modelId: string) =>
      call("select", () =>
        collection.updateOne({ username, "models.model_id": modelId }, { $set: { selected_model: modelId } }),
      ).then((result) => result.matchedCount === 1),
    /**
     * Replaces `models` and `selected_model` only if they are still `seen` (the filter repeats the
     * array as read): the portable form of LAYRA's `arrayFilters` updates. False on a concurrent change.
     */
    replaceModels: (username: string, seen: ModelsState, next: ModelsState) =>
      call("replaceModels", () =>
        collection.updateOne(
          { username, models: seen.models, selected_model: seen.selected_model },
          { $set: { models: next.models, selected_model: next.selected_model } },
        ),
      ).then((result) => result.matchedCount === 1),
    /** The users with a model whose `base_used` names this knowledge base. */
    usersReferencingBase: (knowledgeBaseId: string) =>
      call("usersReferencingBase", () =>
        collection
          .find({ "models.base_used.baseId": knowledgeBaseId }, { projection: { _id: 0, username: 1 } })
          .toArray(),
      ).then((docs) => docs.map((doc) => doc.username)),
  };
}

export type ModelConfigRepository = ReturnType<typeof modelConfigRepository>;

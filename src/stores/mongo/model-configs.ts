// `model_config`: one document per user, their models and the selected one. LAYRA's Python code
// writes it too, so every write keeps the BSON type of each value it does not change (LAYRA's -1.0
// stays a double) and writes LAYRA's types for the values it does (docs/shared-writes.md, "model_config").
import { BSON, Double, type Collection, type Document } from "mongodb";
import { isDeepStrictEqual } from "node:util";
import { Conflict, NotFound } from "../../errors.js";
import type { ModelConfigDoc, ModelDoc } from "../documents.js";
import { NO_ID, observer, type UntilConnected } from "./collection.js";

export type ModelsState = Pick<ModelConfigDoc, "models" | "selected_model">;

/** LAYRA's Pydantic model declares these as float: BSON doubles, even for 1 or -1. */
const DOUBLE_FIELDS = new Set(["temperature", "top_P"]);

/** A value the gateway writes, in LAYRA's BSON type (the other numbers are ints: the driver's int32). */
const layraTyped = (field: string, value: unknown) =>
  DOUBLE_FIELDS.has(field) && typeof value === "number" ? new Double(value) : value;

const layraModel = (model: ModelDoc): Document =>
  Object.fromEntries(Object.entries(model).map(([field, value]) => [field, layraTyped(field, value)]));

/** A raw document (numbers as Int32, Double, Long) as the plain values the rest of the gateway reads. */
const promoted = (raw: Document) => BSON.deserialize(BSON.serialize(raw)) as ModelConfigDoc;

/**
 * `next` as it is stored: each value of a model that is unchanged since `seen` is written back raw,
 * exactly as read; a changed or new value gets LAYRA's type.
 */
function storedModels(next: ModelDoc[], seen: ModelDoc[], seenRaw: Document[]): Document[] {
  return next.map((model) => {
    const index = seen.findIndex((before) => before.model_id === model.model_id);
    if (index < 0) return layraModel(model);
    const before = seen[index] as unknown as Record<string, unknown>;
    const raw = seenRaw[index]!;
    return Object.fromEntries(
      Object.entries(model).map(([field, value]) => [
        field,
        field in raw && isDeepStrictEqual(before[field], value) ? raw[field] : layraTyped(field, value),
      ]),
    );
  });
}

const GUARDED_ATTEMPTS = 5;

export function modelConfigRepository(collection: Collection<ModelConfigDoc>, untilConnected: UntilConnected) {
  const call = observer(collection, untilConnected);
  return {
    find: (username: string) => call("find", () => collection.findOne({ username }, { projection: NO_ID })),
    /** Appends a model (creating the document, with it selected, when there is none), then selects it if none is. */
    addModel: async (username: string, model: ModelDoc) => {
      await call("addModel", () =>
        collection.updateOne(
          { username },
          {
            $push: { models: layraModel(model) as ModelDoc },
            $setOnInsert: { username, selected_model: model.model_id },
          },
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
     * Changes `models` and `selected_model` by a guarded read-modify-write (docs/architecture.md, "Portable
     * MongoDB subset"). `change` answers the new state, or null for no change. NOT_FOUND when the user
     * has no document, CONFLICT when it keeps changing.
     */
    updateModels: async (
      username: string,
      change: (doc: ModelConfigDoc) => ModelsState | null,
    ): Promise<ModelConfigDoc> => {
      for (let attempt = 0; attempt < GUARDED_ATTEMPTS; attempt++) {
        const raw = await call("findRaw", () =>
          collection.findOne({ username }, { projection: NO_ID, promoteValues: false }),
        );
        if (!raw) throw new NotFound("model config", username);
        const doc = promoted(raw);
        const next = change(doc);
        if (!next) return doc;
        const seenRaw = raw.models as unknown as Document[];
        const written = await call("replaceModels", () =>
          collection.updateOne(
            { username, models: raw.models, selected_model: raw.selected_model },
            {
              $set: {
                models: storedModels(next.models, doc.models, seenRaw) as unknown as ModelDoc[],
                selected_model: next.selected_model,
              },
            },
          ),
        );
        if (written.matchedCount === 1) return { ...doc, ...next };
      }
      throw new Conflict(`the model config of ${JSON.stringify(username)} kept changing; try again`);
    },
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

// The gateway beside LAYRA's own backend on one model_config collection (docs/shared-writes.md):
// a config LAYRA changes is what the next read and the next conversation snapshot see, and every
// gateway write keeps the BSON type of each field it does not change and writes LAYRA's types for
// the fields it does (temperature and top_P doubles, the other numbers int32), checked on the raw
// documents as LAYRA's driver would read them.
import assert from "node:assert/strict";
import { before, test } from "node:test";
import type { Document } from "mongodb";
import { LayraWriter } from "../dev/layra-writer.js";
import { mongoCollections } from "../src/stores/mongo.js";
import { gatewayForFile, type TestGateway } from "./helpers.js";

const file = gatewayForFile();
let gw: TestGateway;
let writer: LayraWriter;

before(async () => {
  gw = await file.ready;
  writer = new LayraWriter(gw.app.stores, gw.config.model.url);
});

async function run<T = Record<string, unknown>>(query: string, token: string, variables?: Record<string, unknown>) {
  const result = await gw.query<T>(query, { token, variables });
  assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  return result.data!;
}

/** The user's stored models with the BSON type of every numeric field, read raw (no promotion to JS numbers). */
async function storedTypes(username: string): Promise<Record<string, Record<string, string>>> {
  const raw = await mongoCollections(gw.app.stores.mongo.db).modelConfig.findOne(
    { username },
    { promoteValues: false, projection: { _id: 0 } },
  );
  assert.ok(raw, `${username} has a model config`);
  return Object.fromEntries(
    (raw.models as unknown as Document[]).map((model) => [
      String(model.model_id),
      Object.fromEntries(
        ["temperature", "max_length", "top_P", "top_K", "score_threshold"].map((field) => [
          field,
          (model[field] as { _bsontype?: string })?._bsontype ?? typeof model[field],
        ]),
      ),
    ]),
  );
}

/** What LAYRA's Pydantic models make of a model's numbers. */
const LAYRA_TYPES = {
  temperature: "Double",
  max_length: "Int32",
  top_P: "Double",
  top_K: "Int32",
  score_threshold: "Int32",
};

test("a config LAYRA changes is what the next me.modelConfig answers, and createConversation snapshots its new selection", async () => {
  const config = await writer.registerUser("lena");
  const token = await gw.token("lena");
  const read = `{ me { modelConfig { selectedModelId models { modelId modelName } } } }`;
  type Read = { me: { modelConfig: { selectedModelId: string; models: { modelId: string; modelName: string }[] } } };
  const before = await run<Read>(read, token);
  assert.equal(before.me.modelConfig.selectedModelId, config.selected_model);

  // LAYRA's POST /config/{user} then PUT /config/{user}/select-model, straight to Mongo.
  const added = await writer.addModel("lena", { model_name: "layra-added", temperature: 0.3 });
  await writer.selectModel("lena", added.model_id);

  const after = await run<Read>(read, token);
  assert.equal(after.me.modelConfig.selectedModelId, added.model_id);
  assert.deepEqual(
    after.me.modelConfig.models.map((model) => model.modelName),
    ["qwen2.5-vl-32b-instruct", "layra-added"],
  );
  const created = await run<{ createConversation: { modelSettings: { modelName: string; temperature: number } } }>(
    `mutation { createConversation(name: "right after") { modelSettings { modelName temperature } } }`,
    token,
  );
  assert.deepEqual(created.createConversation.modelSettings, { modelName: "layra-added", temperature: 0.3 });
});

test("every gateway write to model_config keeps the types of what it does not change and writes LAYRA's types", async () => {
  await writer.registerUser("mara");
  const other = await writer.addModel("mara", { model_name: "layra's other", temperature: 0.7, top_P: 1 });
  const token = await gw.token("mara");
  const [layraDefault] = Object.keys(await storedTypes("mara"));
  const expectLayraTypes = async (when: string) => {
    for (const [modelId, types] of Object.entries(await storedTypes("mara")))
      assert.deepEqual(types, LAYRA_TYPES, `${when}: ${modelId}`);
  };
  await expectLayraTypes("as LAYRA wrote them");

  // addModel: the new model gets LAYRA's types, including integral temperatures and -1 defaults.
  const added = await run<{ addModel: { modelId: string } }>(
    `mutation { addModel(input: { modelName: "gw", modelUrl: "http://model.invalid/v1", temperature: 1, topK: 5 }) { modelId } }`,
    token,
  );
  await expectLayraTypes("after addModel");

  // updateModel of one model: the others are untouched, its changed fields get LAYRA's types.
  await run(
    `mutation ($id: String!) { updateModel(modelId: $id, input: { temperature: 0, topP: 0.5, maxLength: 2048, scoreThreshold: 10 }) { modelId } }`,
    token,
    { id: layraDefault },
  );
  await expectLayraTypes("after updateModel");

  await run(`mutation ($id: String!) { selectModel(modelId: $id) { selectedModelId } }`, token, { id: other.model_id });
  await expectLayraTypes("after selectModel");

  // base_used clean-up when a knowledge base is deleted rewrites the models that named it.
  const kb = await run<{ createKnowledgeBase: { knowledgeBaseId: string } }>(
    `mutation { createKnowledgeBase(name: "referenced") { knowledgeBaseId } }`,
    token,
  );
  const kbId = kb.createKnowledgeBase.knowledgeBaseId;
  await run(
    `mutation ($id: String!, $kb: String!) { updateModel(modelId: $id, input: { baseUsed: [{ name: "r", baseId: $kb }] }) { modelId } }`,
    token,
    { id: added.addModel.modelId, kb: kbId },
  );
  await expectLayraTypes("after updateModel of baseUsed");
  await run(`mutation ($kb: String!) { deleteKnowledgeBase(knowledgeBaseId: $kb) }`, token, { kb: kbId });
  const models = (await mongoCollections(gw.app.stores.mongo.db).modelConfig.findOne({ username: "mara" }))!.models;
  assert.deepEqual(models.find((model) => model.model_id === added.addModel.modelId)!.base_used, []);
  await expectLayraTypes("after the base_used clean-up");

  await run(`mutation ($id: String!) { deleteModel(modelId: $id) { selectedModelId } }`, token, { id: other.model_id });
  assert.deepEqual(Object.keys(await storedTypes("mara")), [layraDefault, added.addModel.modelId]);
  await expectLayraTypes("after deleteModel");

  // The values themselves round-trip as written.
  const stored = (await mongoCollections(gw.app.stores.mongo.db).modelConfig.findOne({ username: "mara" }))!;
  const updated = stored.models.find((model) => model.model_id === layraDefault)!;
  assert.deepEqual(
    [updated.temperature, updated.top_P, updated.max_length, updated.top_K, updated.score_threshold],
    [0, 0.5, 2048, -1, 10],
  );
});

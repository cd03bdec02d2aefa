// Model-config mutations: what each one stores, and that the next read shows it (reads come from
// Mongo, with no cache in between: docs/shared-writes.md, "model_config").
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { LayraWriter } from "../dev/layra-writer.js";
import { gatewayForFile, type TestGateway } from "./helpers.js";
import { mongoCollections } from "../src/stores/mongo.js";

const file = gatewayForFile();
let gw: TestGateway;
let writer: LayraWriter;
let bob: string;

before(async () => {
  gw = await file.ready;
  writer = new LayraWriter(gw.app.stores, gw.config.model.url);
  bob = await gw.token("bob");
  await writer.registerUser("bob");
});

const codeOf = (response: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  response.errors?.[0]?.extensions?.code;
const READ = `{ me { modelConfig { selectedModelId selectedModel { modelId } models { modelId modelName temperature apiKeyHint } } } }`;
type Read = {
  me: {
    modelConfig: {
      selectedModelId: string;
      selectedModel: { modelId: string } | null;
      models: { modelId: string; modelName: string; temperature: number; apiKeyHint: string }[];
    };
  };
};

/** A fresh user with LAYRA's registration document and a token. */
async function freshUser(name: string) {
  const config = await writer.registerUser(name);
  return { config, token: await gw.token(name) };
}

test("addModel, updateModel, selectModel and deleteModel change the stored config, and the next read shows it", async () => {
  const { config, token } = await freshUser("dave");
  const original = config.selected_model;
  await gw.query<Read>(READ, { token });

  const added = await gw.query<{ addModel: { modelId: string; modelName: string } }>(
    `mutation($input: ModelSettingsInput!) { addModel(input: $input) { modelId modelName } }`,
    {
      token,
      variables: {
        input: {
          modelName: " gpt-4o ",
          modelUrl: "https://api.openai.com/v1",
          apiKey: "sk-secret-123456",
          temperature: 0.2,
        },
      },
    },
  );
  assert.equal(added.errors, undefined, JSON.stringify(added.errors));
  const modelId = added.data!.addModel.modelId;
  assert.match(modelId, /^dave_[0-9a-f-]{36}$/);
  const stored = await mongoCollections(gw.app.stores.mongo.db).modelConfig.findOne({ username: "dave" });
  assert.deepEqual(stored!.models[1], {
    model_id: modelId,
    model_name: "gpt-4o",
    model_url: "https://api.openai.com/v1",
    api_key: "sk-secret-123456",
    base_used: [],
    system_prompt: "You are a helpful assistant.",
    temperature: 0.2,
    max_length: -1,
    top_P: -1,
    top_K: -1,
    score_threshold: -1,
  });
  let read = (await gw.query<Read>(READ, { token })).data!.me.modelConfig;
  assert.deepEqual(
    read.models.map((m) => m.modelName),
    ["qwen2.5-vl-32b-instruct", "gpt-4o"],
  );
  assert.equal(read.models[1]!.apiKeyHint, "…3456");

  const updated = await gw.query(
    `mutation($id: String!, $input: ModelSettingsInput!) { updateModel(modelId: $id, input: $input) { temperature } }`,
    { token, variables: { id: modelId, input: { temperature: 0.7 } } },
  );
  assert.equal(updated.errors, undefined);
  read = (await gw.query<Read>(READ, { token })).data!.me.modelConfig;
  assert.equal(read.models[1]!.temperature, 0.7);
  assert.equal(
    (await mongoCollections(gw.app.stores.mongo.db).modelConfig.findOne({ username: "dave" }))!.models[1]!.api_key,
    "sk-secret-123456",
    "fields left out keep their value",
  );

  const selected = await gw.query<{ selectModel: { selectedModelId: string } }>(
    `mutation($id: String!) { selectModel(modelId: $id) { selectedModelId } }`,
    { token, variables: { id: modelId } },
  );
  assert.equal(selected.data?.selectModel.selectedModelId, modelId);
  assert.equal((await gw.query<Read>(READ, { token })).data!.me.modelConfig.selectedModelId, modelId);

  // Deleting the selected model selects another one: never a dangling selected_model.
  const deleted = await gw.query<{ deleteModel: { selectedModelId: string; models: { modelId: string }[] } }>(
    `mutation($id: String!) { deleteModel(modelId: $id) { selectedModelId models { modelId } } }`,
    { token, variables: { id: modelId } },
  );
  assert.equal(deleted.data?.deleteModel.selectedModelId, original);
  const afterDelete = await mongoCollections(gw.app.stores.mongo.db).modelConfig.findOne({ username: "dave" });
  assert.equal(afterDelete!.selected_model, original);
  assert.deepEqual(
    afterDelete!.models.map((m) => m.model_id),
    [original],
  );
  read = (await gw.query<Read>(READ, { token })).data!.me.modelConfig;
  assert.equal(read.selectedModel?.modelId, original);

  // And deleting the last one selects none.
  const last = await gw.query<{ deleteModel: { selectedModelId: string } }>(
    `mutation($id: String!) { deleteModel(modelId: $id) { selectedModelId } }`,
    { token, variables: { id: original } },
  );
  assert.equal(last.data?.deleteModel.selectedModelId, "");
  read = (await gw.query<Read>(READ, { token })).data!.me.modelConfig;
  assert.deepEqual({ selected: read.selectedModel, models: read.models }, { selected: null, models: [] });

  // A model added to a config with none selected becomes the selected one.
  const readded = await gw.query<{ addModel: { modelId: string } }>(
    `mutation($input: ModelSettingsInput!) { addModel(input: $input) { modelId } }`,
    { token, variables: { input: { modelName: "again", modelUrl: "https://example.com/v1" } } },
  );
  assert.equal(
    (await gw.query<Read>(READ, { token })).data!.me.modelConfig.selectedModelId,
    readded.data!.addModel.modelId,
  );
});

test("model mutations on another user's model answer NOT_FOUND and change nothing; bad settings are BAD_USER_INPUT", async () => {
  const { config, token } = await freshUser("erin");
  const modelId = config.selected_model;
  for (const [query, variables] of [
    [`mutation($id: String!) { deleteModel(modelId: $id) { selectedModelId } }`, { id: modelId }],
    [`mutation($id: String!) { selectModel(modelId: $id) { selectedModelId } }`, { id: modelId }],
    [
      `mutation($id: String!, $input: ModelSettingsInput!) { updateModel(modelId: $id, input: $input) { modelId } }`,
      { id: modelId, input: { modelName: "bob's" } },
    ],
  ] as const) {
    assert.equal(codeOf(await gw.query(query, { token: bob, variables })), "NOT_FOUND", query);
  }
  assert.deepEqual(
    await mongoCollections(gw.app.stores.mongo.db).modelConfig.findOne(
      { username: "erin" },
      { projection: { _id: 0 } },
    ),
    config,
  );

  const add = `mutation($input: ModelSettingsInput!) { addModel(input: $input) { modelId } }`;
  for (const input of [
    { modelName: "m", modelUrl: "ftp://x" },
    { modelName: "", modelUrl: "https://x" },
    { modelName: "m", modelUrl: "https://x", topK: 31 },
    { modelName: "m", modelUrl: "https://x", temperature: 1.5 },
    { modelUrl: "https://x" },
  ])
    assert.equal(codeOf(await gw.query(add, { token, variables: { input } })), "BAD_USER_INPUT", JSON.stringify(input));
  assert.equal(
    (await mongoCollections(gw.app.stores.mongo.db).modelConfig.findOne({ username: "erin" }))!.models.length,
    1,
  );
});

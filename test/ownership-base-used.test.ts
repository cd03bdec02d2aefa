// `base_used` (the knowledge bases a chat and `ask` search) naming another user's knowledge base:
// every mutation that writes it answers exactly as for a base that does not exist, and writes nothing.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { before, test } from "node:test";
import { LayraWriter } from "../dev/layra-writer.js";
import { mongoCollections } from "../src/stores/mongo.js";
import { gatewayForFile, type GraphQLResponse, type TestGateway } from "./helpers.js";

const file = gatewayForFile();
let gw: TestGateway;
let writer: LayraWriter;

before(async () => {
  gw = await file.ready;
  writer = new LayraWriter(gw.app.stores, gw.config.model.url);
});

/** A mutation writing `base_used`, sent by the caller with one entry naming `baseId`. */
type BaseUsedWrite = (token: string, baseId: string) => Promise<GraphQLResponse<unknown>>;

const ADD_MODEL = `mutation($input: ModelSettingsInput!) { addModel(input: $input) { modelId } }`;
const UPDATE_MODEL = `mutation($id: String!, $input: ModelSettingsInput!) { updateModel(modelId: $id, input: $input) { modelId } }`;
const CREATE_CONVERSATION = `mutation($input: ModelSettingsInput) { createConversation(name: "c", modelSettings: $input) { conversationId } }`;
const UPDATE_CONVERSATION = `mutation($id: String!, $input: ModelSettingsInput!) { updateConversationModelSettings(conversationId: $id, input: $input) { conversationId } }`;

const baseUsed = (baseId: string) => [{ name: "kb", baseId }];

/** Everything of `username`'s that the four mutations could write. */
async function userDocuments(username: string) {
  const collections = mongoCollections(gw.app.stores.mongo.db);
  return {
    modelConfig: await collections.modelConfig.findOne({ username }, { projection: { _id: 0 } }),
    conversations: await collections.conversations
      .find({ username }, { projection: { _id: 0 }, sort: { conversation_id: 1 } })
      .toArray(),
  };
}

test("base_used naming another user's knowledge base: addModel, updateModel, createConversation and updateConversationModelSettings answer as for a missing base and write nothing", async () => {
  const username = `fay${randomUUID().slice(0, 8)}`;
  const config = await writer.registerUser(username);
  const conversation = await writer.createConversation(username, "settings");
  const token = await gw.token(username);
  const foreign = (await writer.createKnowledgeBase("bob", "bob's kb")).knowledge_base_id;
  // A missing id of the same shape, so the two answers can differ only by the id they name.
  const missing = `bob_${randomUUID()}`;
  const own = (await writer.createKnowledgeBase(username, "fay's kb")).knowledge_base_id;

  const writes: Record<string, BaseUsedWrite> = {
    addModel: (token, baseId) =>
      gw.query(ADD_MODEL, {
        token,
        variables: { input: { modelName: "m", modelUrl: "https://models.example/v1", baseUsed: baseUsed(baseId) } },
      }),
    updateModel: (token, baseId) =>
      gw.query(UPDATE_MODEL, {
        token,
        variables: { id: config.models[0]!.model_id, input: { baseUsed: baseUsed(baseId) } },
      }),
    createConversation: (token, baseId) =>
      gw.query(CREATE_CONVERSATION, { token, variables: { input: { baseUsed: baseUsed(baseId) } } }),
    updateConversationModelSettings: (token, baseId) =>
      gw.query(UPDATE_CONVERSATION, {
        token,
        variables: { id: conversation.conversation_id, input: { baseUsed: baseUsed(baseId) } },
      }),
  };

  for (const [name, write] of Object.entries(writes)) {
    const before = await userDocuments(username);
    const refused = await write(token, foreign);
    const absent = await write(token, missing);
    assert.equal(refused.errors?.[0]?.extensions?.code, "NOT_FOUND", `${name}: ${JSON.stringify(refused)}`);
    assert.deepEqual(
      JSON.parse(JSON.stringify(refused).replaceAll(foreign, "<id>")),
      JSON.parse(JSON.stringify(absent).replaceAll(missing, "<id>")),
      `${name}: another user's base is answered exactly like a missing one`,
    );
    assert.deepEqual(await userDocuments(username), before, `${name}: nothing was written`);
  }

  // The same mutations with the caller's own base go through, so the refusals above are about ownership.
  for (const [name, write] of Object.entries(writes)) {
    const allowed = await write(token, own);
    assert.equal(allowed.errors, undefined, `${name}: ${JSON.stringify(allowed.errors)}`);
  }
  const after = await userDocuments(username);
  assert.deepEqual(
    after.modelConfig!.models.map((model) => model.base_used),
    [baseUsed(own), baseUsed(own)],
    "the model updated and the model added name the caller's base",
  );
  assert.deepEqual(
    after.conversations.map((doc) => doc.model_config.base_used),
    [baseUsed(own), baseUsed(own)],
    "the conversation created and the one updated name the caller's base",
  );
});

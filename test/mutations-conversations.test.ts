// Conversation mutations: LAYRA's document and turn shapes, and deletes that cascade to the temp
// knowledge bases named by the turns (Mongo, Milvus and S3 checked directly).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { before, test } from "node:test";
import type { FileDoc } from "../src/stores/documents.js";
import { defaultSettings, LayraWriter, layraTurn } from "../dev/layra-writer.js";
import { knowledgeBaseTraces, NOTHING_LEFT, objectKeysOf } from "./fixtures/traces.js";
import { gatewayForFile, type TestGateway } from "./helpers.js";
import { mongoCollections } from "../src/stores/mongo.js";

const file = gatewayForFile();
let gw: TestGateway;
let writer: LayraWriter;
let alice: string;
let bob: string;

before(async () => {
  gw = await file.ready;
  writer = new LayraWriter(gw.app.stores, gw.config.model.url);
  [alice, bob] = await Promise.all([gw.token("alice"), gw.token("bob")]);
  await writer.registerUser("alice", { model_name: "alice-model", system_prompt: "Be brief." });
});

const codeOf = (response: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  response.errors?.[0]?.extensions?.code;
const CREATE = `mutation($id: String, $name: String!, $settings: ModelSettingsInput) {
  createConversation(conversationId: $id, name: $name, modelSettings: $settings) { conversationId name modelSettings { modelName systemPrompt topK } }
}`;
const ADD_TURN = `mutation($id: String!, $input: AddTurnInput!) { addTurn(conversationId: $id, input: $input) { messageId } }`;
const DELETE = `mutation($id: String!) { deleteConversation(conversationId: $id) }`;

/** A chat-upload temp knowledge base of a conversation, as LAYRA's upload endpoint names it. */
async function tempKnowledgeBase(username: string, parentId: string): Promise<{ id: string; files: FileDoc[] }> {
  const suffix = randomUUID();
  const kb = await writer.createKnowledgeBase(username, `temp_base_${username}_${suffix}`, {
    id: `temp_${parentId}_${suffix}`,
    temp: true,
  });
  const file = await writer.ingestFile(username, kb.knowledge_base_id, {
    filename: "upload.pdf",
    pages: [{ text: "uploaded page" }],
  });
  return { id: kb.knowledge_base_id, files: [file] };
}

test("createConversation with a server id snapshots the selected model; a client id must be the caller's {username}_{uuid4}", async () => {
  const created = await gw.query<{
    createConversation: {
      conversationId: string;
      name: string;
      modelSettings: { modelName: string; systemPrompt: string };
    };
  }>(CREATE, { token: alice, variables: { name: " First chat " } });
  assert.equal(created.errors, undefined);
  const { conversationId } = created.data!.createConversation;
  assert.match(conversationId, /^alice_[0-9a-f-]{36}$/);
  const doc = await mongoCollections(gw.app.stores.mongo.db).conversations.findOne(
    { conversation_id: conversationId },
    { projection: { _id: 0 } },
  );
  assert.deepEqual(Object.keys(doc!).sort(), [
    "conversation_id",
    "conversation_name",
    "created_at",
    "is_delete",
    "is_read",
    "last_modify_at",
    "model_config",
    "turns",
    "username",
  ]);
  assert.equal(doc!.conversation_name, "First chat");
  assert.deepEqual(doc!.turns, []);
  assert.equal(doc!.is_read, false);
  assert.equal(doc!.is_delete, false);
  assert.equal(doc!.model_config.model_name, "alice-model");
  assert.equal("model_id" in doc!.model_config, false, "a snapshot has no model_id, as LAYRA's");

  const clientId = `alice_${randomUUID()}`;
  const withId = await gw.query<{ createConversation: { conversationId: string; modelSettings: { topK: number } } }>(
    CREATE,
    { token: alice, variables: { id: clientId, name: "Mine", settings: { topK: 5 } } },
  );
  assert.equal(withId.data?.createConversation.conversationId, clientId);
  assert.equal(withId.data?.createConversation.modelSettings.topK, 5);
  assert.equal(
    codeOf(await gw.query(CREATE, { token: alice, variables: { id: clientId, name: "again" } })),
    "CONFLICT",
  );
  for (const id of [`bob_${randomUUID()}`, "alice_not-a-uuid", "alice", `alice_${randomUUID()}_x`]) {
    assert.equal(codeOf(await gw.query(CREATE, { token: alice, variables: { id, name: "x" } })), "BAD_USER_INPUT", id);
  }
  assert.equal(
    codeOf(await gw.query(CREATE, { token: alice, variables: { name: "x", settings: { topK: 99 } } })),
    "BAD_USER_INPUT",
  );
  assert.equal(await mongoCollections(gw.app.stores.mongo.db).conversations.countDocuments({ username: "alice" }), 2);
});

test("renameConversation and updateConversationModelSettings $set with last_modify_at; bob's attempts answer NOT_FOUND and change nothing", async () => {
  const conversation = await writer.createConversation("alice", "before");
  const kb = await writer.createKnowledgeBase("alice", "kb");
  const rename = `mutation($id: String!, $name: String!) { renameConversation(conversationId: $id, name: $name) { name } }`;
  const settings = `mutation($id: String!, $input: ModelSettingsInput!) { updateConversationModelSettings(conversationId: $id, input: $input) { modelSettings { modelName temperature baseUsed { baseId } } } }`;
  assert.equal(
    codeOf(await gw.query(rename, { token: bob, variables: { id: conversation.conversation_id, name: "bob's" } })),
    "NOT_FOUND",
  );
  assert.equal(
    codeOf(
      await gw.query(settings, {
        token: bob,
        variables: { id: conversation.conversation_id, input: { modelName: "x" } },
      }),
    ),
    "NOT_FOUND",
  );
  const untouched = await mongoCollections(gw.app.stores.mongo.db).conversations.findOne(
    { conversation_id: conversation.conversation_id },
    { projection: { _id: 0 } },
  );
  assert.deepEqual(untouched, conversation);

  const renamed = await gw.query<{ renameConversation: { name: string } }>(rename, {
    token: alice,
    variables: { id: conversation.conversation_id, name: " after " },
  });
  assert.equal(renamed.data?.renameConversation.name, "after");
  // Backdated, so a settings update that leaves last_modify_at alone cannot pass for one that bumped it.
  const backdated = new Date(Date.now() - 3_600_000);
  await mongoCollections(gw.app.stores.mongo.db).conversations.updateOne(
    { conversation_id: conversation.conversation_id },
    { $set: { last_modify_at: backdated } },
  );
  const updated = await gw.query<{
    updateConversationModelSettings: {
      modelSettings: { modelName: string; temperature: number; baseUsed: { baseId: string }[] };
    };
  }>(settings, {
    token: alice,
    variables: {
      id: conversation.conversation_id,
      input: { temperature: 0.5, baseUsed: [{ name: "kb", baseId: kb.knowledge_base_id }] },
    },
  });
  assert.deepEqual(updated.data?.updateConversationModelSettings.modelSettings, {
    modelName: defaultSettings().model_name,
    temperature: 0.5,
    baseUsed: [{ baseId: kb.knowledge_base_id }],
  });
  const stored = await mongoCollections(gw.app.stores.mongo.db).conversations.findOne({
    conversation_id: conversation.conversation_id,
  });
  assert.deepEqual(stored!.model_config, {
    ...defaultSettings(),
    temperature: 0.5,
    base_used: [{ name: "kb", baseId: kb.knowledge_base_id }],
  });
  assert.ok(stored!.last_modify_at.getTime() > backdated.getTime() + 60_000, "last_modify_at was bumped to now");
  const foreignKb = await writer.createKnowledgeBase("bob", "bob's kb");
  const refused = await gw.query(settings, {
    token: alice,
    variables: {
      id: conversation.conversation_id,
      input: { baseUsed: [{ name: "x", baseId: foreignKb.knowledge_base_id }] },
    },
  });
  assert.equal(codeOf(refused), "NOT_FOUND", "a base_used entry must name one of the caller's knowledge bases");
});

test("addTurn pushes LAYRA's turn shape; tempDb and parentMessageId are checked", async () => {
  const conversation = await writer.createConversation("alice", "turns");
  const temp = `temp_${conversation.conversation_id}_${randomUUID()}`;
  const first = await gw.query<{ addTurn: { messageId: string } }>(ADD_TURN, {
    token: alice,
    variables: {
      id: conversation.conversation_id,
      input: {
        userMessage: "What is shown?",
        imageKeys: ["alice_page_0_0123456789abcdef01234567.png"],
        tempDb: temp,
        aiMessage: "A router.",
        totalToken: 30,
        completionTokens: 20,
        promptTokens: 10,
      },
    },
  });
  assert.equal(first.errors, undefined);
  const messageId = first.data!.addTurn.messageId;
  assert.match(messageId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const second = await gw.query<{ addTurn: { messageId: string } }>(ADD_TURN, {
    token: alice,
    variables: {
      id: conversation.conversation_id,
      input: { parentMessageId: messageId, userMessage: "And?", aiMessage: "That's all." },
    },
  });
  assert.equal(second.errors, undefined);

  const stored = await mongoCollections(gw.app.stores.mongo.db).conversations.findOne({
    conversation_id: conversation.conversation_id,
  });
  const [turn, child] = stored!.turns;
  assert.deepEqual(
    { ...turn!, timestamp: undefined },
    {
      message_id: messageId,
      parent_message_id: "",
      user_message: {
        role: "user",
        content: [
          { type: "image_url", image_url: "alice_page_0_0123456789abcdef01234567.png" },
          { type: "text", text: "What is shown?" },
        ],
      },
      temp_db: temp,
      ai_message: { role: "assistant", content: "A router." },
      file_used: [],
      status: "completed",
      timestamp: undefined,
      total_token: 30,
      completion_tokens: 20,
      prompt_tokens: 10,
    },
  );
  assert.ok(turn!.timestamp instanceof Date);
  assert.equal(child!.parent_message_id, messageId);
  assert.equal(stored!.last_modify_at.getTime(), child!.timestamp.getTime());

  const bad = [
    { userMessage: "x", aiMessage: "y", tempDb: `temp_alice_${randomUUID()}_${randomUUID()}` },
    { userMessage: "x", aiMessage: "y", parentMessageId: randomUUID() },
    { userMessage: "x", aiMessage: "y", imageKeys: ["bob_page.png"] },
    { userMessage: "x", aiMessage: "y", status: "weird" },
  ];
  for (const input of bad)
    assert.equal(
      codeOf(await gw.query(ADD_TURN, { token: alice, variables: { id: conversation.conversation_id, input } })),
      "BAD_USER_INPUT",
      JSON.stringify(input),
    );
  assert.equal(
    codeOf(
      await gw.query(ADD_TURN, {
        token: bob,
        variables: { id: conversation.conversation_id, input: { userMessage: "x", aiMessage: "y" } },
      }),
    ),
    "NOT_FOUND",
  );
  assert.equal(
    (await mongoCollections(gw.app.stores.mongo.db).conversations.findOne({
      conversation_id: conversation.conversation_id,
    }))!.turns.length,
    2,
  );
});

test("deleteConversation deletes the temp knowledge bases its turns name in every store, then the conversation; another user's temp base is never touched", async () => {
  const conversation = await writer.createConversation("alice", "with uploads");
  const temps = [
    await tempKnowledgeBase("alice", conversation.conversation_id),
    await tempKnowledgeBase("alice", conversation.conversation_id),
  ];
  const bobsTemp = await tempKnowledgeBase("bob", `bob_${randomUUID()}`);
  for (const temp of temps) {
    const added = await gw.query(ADD_TURN, {
      token: alice,
      variables: {
        id: conversation.conversation_id,
        input: { userMessage: "see file", aiMessage: "ok", tempDb: temp.id },
      },
    });
    assert.equal(added.errors, undefined);
  }
  // LAYRA's chat endpoint takes temp_db from the client: turns naming someone else's temp base or
  // one of alice's normal bases must not make the cascade delete them.
  const normal = await writer.createKnowledgeBase("alice", "normal");
  await mongoCollections(gw.app.stores.mongo.db).conversations.updateOne(
    { conversation_id: conversation.conversation_id },
    { $push: { turns: layraTurn("bob's file?", { tempDb: bobsTemp.id }) } },
  );
  await mongoCollections(gw.app.stores.mongo.db).conversations.updateOne(
    { conversation_id: conversation.conversation_id },
    { $push: { turns: layraTurn("normal?", { tempDb: normal.knowledge_base_id }) } },
  );

  assert.equal(
    codeOf(await gw.query(DELETE, { token: bob, variables: { id: conversation.conversation_id } })),
    "NOT_FOUND",
  );
  for (const temp of temps)
    assert.equal((await knowledgeBaseTraces(gw.app.stores, temp.id, temp.files)).knowledgeBaseDocument, true);

  const deleted = await gw.query<{ deleteConversation: string }>(DELETE, {
    token: alice,
    variables: { id: conversation.conversation_id },
  });
  assert.equal(deleted.errors, undefined, JSON.stringify(deleted.errors));
  assert.equal(deleted.data!.deleteConversation, conversation.conversation_id);
  for (const temp of temps)
    assert.deepEqual(await knowledgeBaseTraces(gw.app.stores, temp.id, temp.files), NOTHING_LEFT);
  assert.equal(
    await mongoCollections(gw.app.stores.mongo.db).conversations.countDocuments({
      conversation_id: conversation.conversation_id,
    }),
    0,
  );
  assert.equal((await knowledgeBaseTraces(gw.app.stores, normal.knowledge_base_id, [])).knowledgeBaseDocument, true);
  assert.equal((await knowledgeBaseTraces(gw.app.stores, normal.knowledge_base_id, [])).milvusCollection, true);
  assert.deepEqual(await knowledgeBaseTraces(gw.app.stores, bobsTemp.id, bobsTemp.files), {
    knowledgeBaseDocument: true,
    filesDocuments: 1,
    milvusCollection: true,
    s3Objects: objectKeysOf(bobsTemp.files),
  });
});

test("deleteAllConversations deletes only the caller's conversations and their temp bases", async () => {
  await mongoCollections(gw.app.stores.mongo.db).conversations.deleteMany({ username: "alice" });
  const conversations = [await writer.createConversation("alice", "a"), await writer.createConversation("alice", "b")];
  const temp = await tempKnowledgeBase("alice", conversations[0]!.conversation_id);
  await gw.query(ADD_TURN, {
    token: alice,
    variables: { id: conversations[0]!.conversation_id, input: { userMessage: "q", aiMessage: "a", tempDb: temp.id } },
  });
  const bobs = await writer.createConversation("bob", "bob's");

  const response = await gw.query<{ deleteAllConversations: number }>(`mutation { deleteAllConversations }`, {
    token: alice,
  });
  assert.equal(response.errors, undefined);
  assert.equal(response.data!.deleteAllConversations, 2);
  assert.equal(await mongoCollections(gw.app.stores.mongo.db).conversations.countDocuments({ username: "alice" }), 0);
  assert.deepEqual(await knowledgeBaseTraces(gw.app.stores, temp.id, temp.files), NOTHING_LEFT);
  assert.equal(
    await mongoCollections(gw.app.stores.mongo.db).conversations.countDocuments({
      conversation_id: bobs.conversation_id,
    }),
    1,
  );
});

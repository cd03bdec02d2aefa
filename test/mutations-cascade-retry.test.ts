// A knowledge-base delete with the S3 server stopped fails with what is left, and the same
// mutation after S3 is back finishes it: every store is checked, nothing is orphaned.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { Redis } from "ioredis";
import { lockKey } from "../src/stores/lock.js";
import { defaultSettings, LayraWriter } from "../dev/layra-writer.js";
import { existingObjects, knowledgeBaseTraces, milvusRows, NOTHING_LEFT, objectKeysOf } from "./fixtures/traces.js";
import { privateStack, sharedStackEnv, startGateway, type TestGateway } from "./helpers.js";
import type { LocalStack } from "../dev/stack/stack.js";
import { mongoCollections } from "../src/stores/mongo.js";

let shared: Awaited<ReturnType<typeof sharedStackEnv>>;
let s3Stack: LocalStack;
let gw: TestGateway;
let writer: LayraWriter;
let alice: string;

before(async () => {
  shared = await sharedStackEnv();
  s3Stack = await privateStack(["s3"]);
  gw = await startGateway({
    ...shared.env,
    MINIO_URL: s3Stack.env.MINIO_URL,
    MINIO_PUBLIC_URL: s3Stack.env.MINIO_PUBLIC_URL,
    MINIO_ACCESS_KEY: s3Stack.env.MINIO_ACCESS_KEY,
    MINIO_SECRET_KEY: s3Stack.env.MINIO_SECRET_KEY,
  });
  await gw.app.stores.s3.ensureBucket();
  writer = new LayraWriter(gw.app.stores, gw.config.model.url);
  alice = await gw.token("alice");
});
after(async () => {
  await gw.close();
  await s3Stack.close();
  await shared.close();
});

const DELETE = `mutation($id: String!) { deleteKnowledgeBase(knowledgeBaseId: $id) }`;

test("deleteKnowledgeBase with S3 down answers CASCADE_INCOMPLETE naming what is left; after S3 is back the same mutation completes it", async () => {
  const { stores } = gw.app;
  const kb = await writer.createKnowledgeBase("alice", "manuals");
  const files = [
    await writer.ingestFile("alice", kb.knowledge_base_id, {
      filename: "router.pdf",
      pages: [{ text: "reset button" }, { text: "power light" }],
    }),
    await writer.ingestFile("alice", kb.knowledge_base_id, { filename: "modem.pdf", pages: [{ text: "cable port" }] }),
  ];
  await writer.registerUser("alice", { base_used: [{ name: "manuals", baseId: kb.knowledge_base_id }] });
  const conversation = await writer.createConversation(
    "alice",
    "chat",
    [],
    defaultSettings({ base_used: [{ name: "manuals", baseId: kb.knowledge_base_id }] }),
  );

  await s3Stack.stopServer("s3");
  const failed = await gw.query(DELETE, { token: alice, variables: { id: kb.knowledge_base_id } });
  const error = failed.errors?.[0];
  assert.equal(error?.extensions?.code, "CASCADE_INCOMPLETE", JSON.stringify(failed));
  // The message names the failure, never the store's address or the driver's words.
  assert.match(error.message, /is incomplete \(\w+ is unavailable\); left: s3 objects, /);
  assert.doesNotMatch(error.message, /ECONN|127\.0\.0\.1|localhost|:\d{2,5}\b/);
  assert.deepEqual(error?.extensions?.remaining, [
    "s3 objects",
    "files documents",
    "base_used references",
    "knowledge base document",
  ]);
  assert.equal(error?.extensions?.retryable, true);
  // Milvus went first; everything that names the objects is still there for the retry.
  assert.deepEqual(
    { ...(await knowledgeBaseTraces(stores, kb.knowledge_base_id, [])), s3Objects: undefined },
    {
      knowledgeBaseDocument: true,
      filesDocuments: 2,
      milvusCollection: false,
      s3Objects: undefined,
    },
  );
  const lockDb = new Redis(gw.config.redis.url, { db: gw.config.redis.db.lock });
  try {
    assert.equal(
      await lockDb.exists(lockKey("knowledge_base", kb.knowledge_base_id)),
      0,
      "the failed request released its lock",
    );
  } finally {
    lockDb.disconnect();
  }

  await s3Stack.startServer("s3");
  assert.deepEqual(
    await knowledgeBaseTraces(stores, kb.knowledge_base_id, files).then((t) => t.s3Objects),
    objectKeysOf(files),
    "the objects survived the failure",
  );
  const retried = await gw.query<{ deleteKnowledgeBase: string }>(DELETE, {
    token: alice,
    variables: { id: kb.knowledge_base_id },
  });
  assert.equal(retried.errors, undefined, JSON.stringify(retried.errors));
  assert.equal(retried.data!.deleteKnowledgeBase, kb.knowledge_base_id);

  assert.deepEqual(await knowledgeBaseTraces(stores, kb.knowledge_base_id, files), NOTHING_LEFT);
  assert.deepEqual(
    (await mongoCollections(stores.mongo.db).modelConfig.findOne({ username: "alice" }))!.models[0]!.base_used,
    [],
  );
  assert.deepEqual(
    (await mongoCollections(stores.mongo.db).conversations.findOne({ conversation_id: conversation.conversation_id }))!
      .model_config.base_used,
    [],
  );
  const everything = await stores.s3.client.listObjectsV2(stores.s3.bucket, "", true).toArray();
  assert.deepEqual(everything, [], "no object of any kind is left in the bucket");
});

test("deleteFiles with S3 down leaves every file findable, and the retry after S3 is back removes them everywhere", async () => {
  const { stores } = gw.app;
  const kb = await writer.createKnowledgeBase("alice", "manuals");
  const gone = await writer.ingestFile("alice", kb.knowledge_base_id, {
    filename: "old.pdf",
    pages: [{ text: "old page" }],
  });
  const kept = await writer.ingestFile("alice", kb.knowledge_base_id, {
    filename: "new.pdf",
    pages: [{ text: "new page" }],
  });
  const DELETE_FILES = `mutation($ids: [String!]!) { deleteFiles(fileIds: $ids) }`;

  await s3Stack.stopServer("s3");
  const failed = await gw.query(DELETE_FILES, { token: alice, variables: { ids: [gone.file_id] } });
  assert.equal(failed.errors?.[0]?.extensions?.code, "CASCADE_INCOMPLETE");
  assert.deepEqual(failed.errors?.[0]?.extensions?.remaining, [
    "s3 objects",
    "knowledge base file refs",
    "files documents",
  ]);
  assert.equal(await mongoCollections(stores.mongo.db).files.countDocuments({ file_id: gone.file_id }), 1);
  assert.equal(await milvusRows(stores, kb.knowledge_base_id, [gone.file_id]), 0, "Milvus rows went first");

  await s3Stack.startServer("s3");
  const retried = await gw.query<{ deleteFiles: string[] }>(DELETE_FILES, {
    token: alice,
    variables: { ids: [gone.file_id] },
  });
  assert.deepEqual(retried.data?.deleteFiles, [gone.file_id], JSON.stringify(retried.errors));
  assert.deepEqual(await existingObjects(stores, objectKeysOf([gone])), []);
  assert.deepEqual(await existingObjects(stores, objectKeysOf([kept])), objectKeysOf([kept]));
  assert.equal(await mongoCollections(stores.mongo.db).files.countDocuments({ file_id: gone.file_id }), 0);
  assert.deepEqual(
    (await mongoCollections(stores.mongo.db).knowledgeBases.findOne({
      knowledge_base_id: kb.knowledge_base_id,
    }))!.files.map((ref) => ref.file_id),
    [kept.file_id],
  );
  assert.ok((await milvusRows(stores, kb.knowledge_base_id, [kept.file_id])) > 0);
});

test("deleteConversation with S3 down names the temp base's remaining steps and keeps the conversation; the retry finishes both", async () => {
  const { stores } = gw.app;
  const conversation = await writer.createConversation("alice", "with upload");
  const suffix = randomUUID();
  const temp = await writer.createKnowledgeBase("alice", `temp_base_alice_${suffix}`, {
    id: `temp_${conversation.conversation_id}_${suffix}`,
    temp: true,
  });
  const files = [
    await writer.ingestFile("alice", temp.knowledge_base_id, { filename: "upload.pdf", pages: [{ text: "page" }] }),
  ];
  const turn = await gw.query(
    `mutation($id: String!, $input: AddTurnInput!) { addTurn(conversationId: $id, input: $input) { messageId } }`,
    {
      token: alice,
      variables: {
        id: conversation.conversation_id,
        input: { userMessage: "q", aiMessage: "a", tempDb: temp.knowledge_base_id },
      },
    },
  );
  assert.equal(turn.errors, undefined);
  const DELETE_CONVERSATION = `mutation($id: String!) { deleteConversation(conversationId: $id) }`;

  await s3Stack.stopServer("s3");
  const failed = await gw.query(DELETE_CONVERSATION, { token: alice, variables: { id: conversation.conversation_id } });
  assert.equal(failed.errors?.[0]?.extensions?.code, "CASCADE_INCOMPLETE");
  const base = `temporary knowledge base ${temp.knowledge_base_id}`;
  assert.deepEqual(failed.errors?.[0]?.extensions?.remaining, [
    `${base}: s3 objects`,
    `${base}: files documents`,
    `${base}: base_used references`,
    `${base}: knowledge base document`,
    "conversation document",
  ]);
  assert.equal(
    await mongoCollections(stores.mongo.db).conversations.countDocuments({
      conversation_id: conversation.conversation_id,
    }),
    1,
  );

  await s3Stack.startServer("s3");
  const retried = await gw.query(DELETE_CONVERSATION, {
    token: alice,
    variables: { id: conversation.conversation_id },
  });
  assert.equal(retried.errors, undefined, JSON.stringify(retried.errors));
  assert.deepEqual(await knowledgeBaseTraces(stores, temp.knowledge_base_id, files), NOTHING_LEFT);
  assert.equal(
    await mongoCollections(stores.mongo.db).conversations.countDocuments({
      conversation_id: conversation.conversation_id,
    }),
    0,
  );
});

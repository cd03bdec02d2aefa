// Knowledge-base and file mutations, checked in every store they touch.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Redis } from "ioredis";
import { collectionName } from "../src/stores/milvus.js";
import { lockKey } from "../src/stores/lock.js";
import { defaultSettings, LayraWriter } from "../dev/layra-writer.js";
import {
  existingObjects,
  hasCollection,
  knowledgeBaseTraces,
  milvusRows,
  NOTHING_LEFT,
  objectKeysOf,
} from "./fixtures/traces.js";
import { gatewayForFile, type TestGateway } from "./helpers.js";
import { mongoCollections } from "../src/stores/mongo.js";

const file = gatewayForFile();
let gw: TestGateway;
let writer: LayraWriter;
let alice: string;
let bob: string;
/** The test's own connection to the lock database, to arrange and read locks beside the gateway. */
let lockDb: Redis;

before(async () => {
  gw = await file.ready;
  writer = new LayraWriter(gw.app.stores, gw.config.model.url);
  [alice, bob] = await Promise.all([gw.token("alice"), gw.token("bob")]);
  lockDb = new Redis(gw.config.redis.url, { db: gw.config.redis.db.lock });
});
after(() => lockDb?.disconnect());

const CREATE = `mutation($name: String!) { createKnowledgeBase(name: $name) { knowledgeBaseId name isTemporary fileCount } }`;
const RENAME = `mutation($id: String!, $name: String!) { renameKnowledgeBase(knowledgeBaseId: $id, name: $name) { knowledgeBaseId name } }`;
const DELETE = `mutation($id: String!) { deleteKnowledgeBase(knowledgeBaseId: $id) }`;
const DELETE_FILES = `mutation($ids: [String!]!) { deleteFiles(fileIds: $ids) }`;

const codeOf = (response: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  response.errors?.[0]?.extensions?.code;

/** A knowledge base of `username` with two ingested files (pages in S3, vectors in Milvus). */
async function populatedKnowledgeBase(username: string) {
  const kb = await writer.createKnowledgeBase(username, "manuals");
  const files = [
    await writer.ingestFile(username, kb.knowledge_base_id, {
      filename: "router.pdf",
      pages: [{ text: "reset button" }, { text: "power light" }],
    }),
    await writer.ingestFile(username, kb.knowledge_base_id, { filename: "modem.pdf", pages: [{ text: "cable port" }] }),
  ];
  return { kb, files };
}

test("createKnowledgeBase writes LAYRA's document and creates the Milvus collection with the configured HNSW index", async () => {
  const before = Date.now();
  const response = await gw.query<{
    createKnowledgeBase: { knowledgeBaseId: string; name: string; isTemporary: boolean; fileCount: number };
  }>(CREATE, { token: alice, variables: { name: "  Router docs  " } });
  assert.equal(response.errors, undefined);
  const created = response.data!.createKnowledgeBase;
  assert.match(created.knowledgeBaseId, /^alice_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual(
    { ...created, knowledgeBaseId: undefined },
    { knowledgeBaseId: undefined, name: "Router docs", isTemporary: false, fileCount: 0 },
  );

  const doc = await mongoCollections(gw.app.stores.mongo.db).knowledgeBases.findOne(
    { knowledge_base_id: created.knowledgeBaseId },
    { projection: { _id: 0 } },
  );
  assert.ok(doc);
  assert.deepEqual(Object.keys(doc).sort(), [
    "created_at",
    "files",
    "is_delete",
    "knowledge_base_id",
    "knowledge_base_name",
    "last_modify_at",
    "used_chat",
    "username",
  ]);
  assert.deepEqual(
    { ...doc, created_at: undefined, last_modify_at: undefined },
    {
      knowledge_base_id: created.knowledgeBaseId,
      knowledge_base_name: "Router docs",
      username: "alice",
      files: [],
      used_chat: [],
      created_at: undefined,
      last_modify_at: undefined,
      is_delete: false,
    },
  );
  assert.ok(doc.created_at instanceof Date && doc.created_at.getTime() >= before - 1000);

  const index = await gw.app.stores.milvus.client.describeIndex({
    collection_name: collectionName(created.knowledgeBaseId),
  });
  const params = Object.fromEntries(index.index_descriptions[0]!.params.map((p) => [p.key, p.value]));
  assert.equal(params.index_type, "HNSW");
  assert.deepEqual(JSON.parse(String(params.params)), {
    M: gw.config.milvus.hnswM,
    efConstruction: gw.config.milvus.efConstruction,
  });
});

test("createKnowledgeBase and renameKnowledgeBase refuse empty and over-long names and change nothing", async () => {
  const count = await mongoCollections(gw.app.stores.mongo.db).knowledgeBases.countDocuments({});
  for (const name of ["", "   ", "x".repeat(201)]) {
    const response = await gw.query(CREATE, { token: alice, variables: { name } });
    assert.equal(codeOf(response), "BAD_USER_INPUT", name);
  }
  assert.equal(await mongoCollections(gw.app.stores.mongo.db).knowledgeBases.countDocuments({}), count);
  const kb = await writer.createKnowledgeBase("alice", "keep");
  const response = await gw.query(RENAME, { token: alice, variables: { id: kb.knowledge_base_id, name: " \t " } });
  assert.equal(codeOf(response), "BAD_USER_INPUT");
  assert.equal(
    (await mongoCollections(gw.app.stores.mongo.db).knowledgeBases.findOne({
      knowledge_base_id: kb.knowledge_base_id,
    }))!.knowledge_base_name,
    "keep",
  );
  const unauthenticated = await gw.query(CREATE, { variables: { name: "x" } });
  assert.equal(codeOf(unauthenticated), "UNAUTHENTICATED");
});

test("renameKnowledgeBase trims the name and bumps last_modify_at; another user's id is NOT_FOUND and unchanged", async () => {
  const kb = await writer.createKnowledgeBase("alice", "old name");
  // Backdated, so a rename that leaves last_modify_at alone cannot pass for one that bumped it.
  const backdated = new Date(Date.now() - 3_600_000);
  await mongoCollections(gw.app.stores.mongo.db).knowledgeBases.updateOne(
    { knowledge_base_id: kb.knowledge_base_id },
    { $set: { last_modify_at: backdated } },
  );
  const response = await gw.query<{ renameKnowledgeBase: { name: string } }>(RENAME, {
    token: alice,
    variables: { id: kb.knowledge_base_id, name: "  new name " },
  });
  assert.equal(response.data?.renameKnowledgeBase.name, "new name");
  const doc = await mongoCollections(gw.app.stores.mongo.db).knowledgeBases.findOne({
    knowledge_base_id: kb.knowledge_base_id,
  });
  assert.equal(doc!.knowledge_base_name, "new name");
  assert.ok(doc!.last_modify_at.getTime() > backdated.getTime() + 60_000, "last_modify_at was bumped to now");

  const foreign = await gw.query(RENAME, { token: bob, variables: { id: kb.knowledge_base_id, name: "stolen" } });
  assert.equal(codeOf(foreign), "NOT_FOUND");
  assert.equal(
    (await mongoCollections(gw.app.stores.mongo.db).knowledgeBases.findOne({
      knowledge_base_id: kb.knowledge_base_id,
    }))!.knowledge_base_name,
    "new name",
  );
});

test("deleteKnowledgeBase removes the collection, objects, files, the document and every base_used reference, and invalidates the cache", async () => {
  const { kb, files } = await populatedKnowledgeBase("alice");
  const other = await writer.createKnowledgeBase("alice", "other");
  const ref = { name: "manuals", baseId: kb.knowledge_base_id };
  const keep = { name: "other", baseId: other.knowledge_base_id };
  await mongoCollections(gw.app.stores.mongo.db).modelConfig.deleteMany({ username: "alice" });
  const config = await writer.registerUser("alice", { base_used: [ref, keep] });
  const conversation = await writer.createConversation(
    "alice",
    "chat",
    [],
    defaultSettings({ base_used: [keep, ref] }),
  );
  // Warm the model-config cache through the gateway.
  const read = await gw.query<{ me: { modelConfig: { models: { baseUsed: { baseId: string }[] }[] } } }>(
    `{ me { modelConfig { models { baseUsed { baseId } } } } }`,
    { token: alice },
  );
  assert.equal(read.data!.me.modelConfig.models[0]!.baseUsed.length, 2);
  assert.ok(
    (await milvusRows(
      gw.app.stores,
      kb.knowledge_base_id,
      files.map((f) => f.file_id),
    )) > 0,
  );

  const response = await gw.query<{ deleteKnowledgeBase: string }>(DELETE, {
    token: alice,
    variables: { id: kb.knowledge_base_id },
  });
  assert.equal(response.errors, undefined);
  assert.equal(response.data!.deleteKnowledgeBase, kb.knowledge_base_id);
  assert.deepEqual(await knowledgeBaseTraces(gw.app.stores, kb.knowledge_base_id, files), NOTHING_LEFT);

  const storedConfig = await mongoCollections(gw.app.stores.mongo.db).modelConfig.findOne({ username: "alice" });
  assert.deepEqual(storedConfig!.models[0]!.base_used, [keep]);
  assert.equal(storedConfig!.selected_model, config.selected_model);
  const storedConversation = await mongoCollections(gw.app.stores.mongo.db).conversations.findOne({
    conversation_id: conversation.conversation_id,
  });
  assert.deepEqual(storedConversation!.model_config.base_used, [keep]);
  const reread = await gw.query<{ me: { modelConfig: { models: { baseUsed: { baseId: string }[] }[] } } }>(
    `{ me { modelConfig { models { baseUsed { baseId } } } } }`,
    { token: alice },
  );
  assert.deepEqual(reread.data!.me.modelConfig.models[0]!.baseUsed, [{ baseId: other.knowledge_base_id }]);
  // The other knowledge base is untouched.
  assert.ok(await hasCollection(gw.app.stores, other.knowledge_base_id));

  const again = await gw.query(DELETE, { token: alice, variables: { id: kb.knowledge_base_id } });
  assert.equal(codeOf(again), "NOT_FOUND");
});

test("another user's deleteKnowledgeBase answers NOT_FOUND and leaves every store as it was", async () => {
  const { kb, files } = await populatedKnowledgeBase("alice");
  const response = await gw.query(DELETE, { token: bob, variables: { id: kb.knowledge_base_id } });
  assert.equal(codeOf(response), "NOT_FOUND");
  assert.deepEqual(await knowledgeBaseTraces(gw.app.stores, kb.knowledge_base_id, files), {
    knowledgeBaseDocument: true,
    filesDocuments: 2,
    milvusCollection: true,
    s3Objects: objectKeysOf(files),
  });
});

test("two concurrent deletes of one knowledge base: one does the work, the other answers CONFLICT or NOT_FOUND, nothing is left", async () => {
  const { kb, files } = await populatedKnowledgeBase("alice");
  const responses = await Promise.all(
    [1, 2].map(() =>
      gw.query<{ deleteKnowledgeBase: string }>(DELETE, { token: alice, variables: { id: kb.knowledge_base_id } }),
    ),
  );
  const succeeded = responses.filter((r) => r.data?.deleteKnowledgeBase === kb.knowledge_base_id);
  assert.equal(succeeded.length, 1, JSON.stringify(responses));
  const other = responses.find((r) => r !== succeeded[0])!;
  assert.ok(["CONFLICT", "NOT_FOUND"].includes(String(codeOf(other))), JSON.stringify(other));
  assert.deepEqual(await knowledgeBaseTraces(gw.app.stores, kb.knowledge_base_id, files), NOTHING_LEFT);
  assert.equal(await lockDb.exists(lockKey("knowledge_base", kb.knowledge_base_id)), 0, "the lock is released");
});

test("while another owner holds the knowledge base's Redis DB 2 lock, deleteKnowledgeBase answers CONFLICT, changes nothing and keeps that lock", async () => {
  const { kb, files } = await populatedKnowledgeBase("alice");
  const key = lockKey("knowledge_base", kb.knowledge_base_id);
  await lockDb.set(key, "someone-else", "PX", 60_000);
  const response = await gw.query(DELETE, { token: alice, variables: { id: kb.knowledge_base_id } });
  assert.equal(codeOf(response), "CONFLICT");
  assert.equal(await lockDb.get(key), "someone-else");
  assert.equal((await knowledgeBaseTraces(gw.app.stores, kb.knowledge_base_id, files)).filesDocuments, 2);
  assert.ok(await hasCollection(gw.app.stores, kb.knowledge_base_id));
  await lockDb.del(key);
  const retried = await gw.query(DELETE, { token: alice, variables: { id: kb.knowledge_base_id } });
  assert.equal(retried.errors, undefined);
  assert.deepEqual(await knowledgeBaseTraces(gw.app.stores, kb.knowledge_base_id, files), NOTHING_LEFT);
});

test("deleteFiles across knowledge bases removes Milvus rows, objects, refs and documents of exactly those files", async () => {
  const first = await populatedKnowledgeBase("alice");
  const second = await populatedKnowledgeBase("alice");
  const [gone1, kept1] = first.files;
  const [gone2, kept2] = second.files;
  const response = await gw.query<{ deleteFiles: string[] }>(DELETE_FILES, {
    token: alice,
    variables: { ids: [gone1!.file_id, gone2!.file_id] },
  });
  assert.equal(response.errors, undefined);
  assert.deepEqual(response.data!.deleteFiles, [gone1!.file_id, gone2!.file_id]);
  const { stores } = gw.app;
  for (const [kb, gone, kept] of [
    [first.kb, gone1!, kept1!],
    [second.kb, gone2!, kept2!],
  ] as const) {
    assert.equal(await milvusRows(stores, kb.knowledge_base_id, [gone.file_id]), 0);
    assert.ok((await milvusRows(stores, kb.knowledge_base_id, [kept.file_id])) > 0);
    assert.deepEqual(await existingObjects(stores, objectKeysOf([gone])), []);
    assert.deepEqual(await existingObjects(stores, objectKeysOf([kept])), objectKeysOf([kept]));
    const doc = await mongoCollections(stores.mongo.db).knowledgeBases.findOne({
      knowledge_base_id: kb.knowledge_base_id,
    });
    assert.deepEqual(
      doc!.files.map((ref) => ref.file_id),
      [kept.file_id],
    );
    assert.equal(await mongoCollections(stores.mongo.db).files.countDocuments({ file_id: gone.file_id }), 0);
    assert.equal(await mongoCollections(stores.mongo.db).files.countDocuments({ file_id: kept.file_id }), 1);
  }
});

test("deleteFiles with one unknown or foreign id answers NOT_FOUND and deletes none of them", async () => {
  const { kb, files } = await populatedKnowledgeBase("alice");
  const bobs = await populatedKnowledgeBase("bob");
  for (const ids of [
    [files[0]!.file_id, "alice_00000000-0000-4000-8000-000000000000"],
    [files[0]!.file_id, bobs.files[0]!.file_id],
  ]) {
    const response = await gw.query(DELETE_FILES, { token: alice, variables: { ids } });
    assert.equal(codeOf(response), "NOT_FOUND");
  }
  assert.deepEqual(await knowledgeBaseTraces(gw.app.stores, kb.knowledge_base_id, files), {
    knowledgeBaseDocument: true,
    filesDocuments: 2,
    milvusCollection: true,
    s3Objects: objectKeysOf(files),
  });
  assert.equal((await knowledgeBaseTraces(gw.app.stores, bobs.kb.knowledge_base_id, bobs.files)).filesDocuments, 2);
  assert.equal(codeOf(await gw.query(DELETE_FILES, { token: alice, variables: { ids: [] } })), "BAD_USER_INPUT");
});

test("Redis DB 2 locks: set-if-absent with expiry, extended and released only with the owner's token", async () => {
  const { locks } = gw.app.stores.redis;
  const key = lockKey("knowledge_base", `alice_${Date.now()}`);
  const token = await locks.acquire(key, 10_000);
  assert.ok(token);
  assert.equal(await locks.acquire(key, 10_000), null, "a held lock is not taken again");
  const ttl = await lockDb.pttl(key);
  assert.ok(ttl > 0 && ttl <= 10_000);
  assert.equal(await locks.extend(key, "not-the-owner", 60_000), false);
  assert.ok((await lockDb.pttl(key)) <= 10_000, "a stranger does not extend it");
  assert.equal(await locks.extend(key, token, 60_000), true);
  assert.ok((await lockDb.pttl(key)) > 10_000);
  assert.equal(await locks.release(key, "not-the-owner"), false);
  assert.equal(await lockDb.get(key), token, "a stranger does not release it");
  assert.equal(await locks.release(key, token), true);
  assert.equal(await lockDb.exists(key), 0);
});

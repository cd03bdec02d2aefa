// Temp knowledge-base cleanup (own data, and everyone's with an operator username) and the
// indexes ensured at start-up.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { mongoCollections, INDEX_PLAN } from "../src/stores/mongo.js";
import { LayraWriter } from "../dev/layra-writer.js";
import { knowledgeBaseTraces, NOTHING_LEFT, objectKeysOf } from "./fixtures/traces.js";
import { privateStack, sharedStackEnv, startGateway, startGatewayWithoutMongo, type TestGateway } from "./helpers.js";

let stack: Awaited<ReturnType<typeof sharedStackEnv>>;
let gw: TestGateway;
let writer: LayraWriter;

before(async () => {
  stack = await sharedStackEnv();
  gw = await startGateway(stack.env, { OPERATOR_USERNAMES: "ops, root" });
  writer = new LayraWriter(gw.app.stores, gw.config.model.url);
});
after(async () => {
  await gw.close();
  await stack.close();
});

const codeOf = (response: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  response.errors?.[0]?.extensions?.code;
const CLEANUP = `mutation($all: Boolean) { cleanupOrphanedTempKnowledgeBases(allUsers: $all) }`;

async function tempKnowledgeBase(username: string, parentId: string) {
  const suffix = randomUUID();
  const kb = await writer.createKnowledgeBase(username, `temp_base_${username}_${suffix}`, {
    id: `temp_${parentId}_${suffix}`,
    temp: true,
  });
  const file = await writer.ingestFile(username, kb.knowledge_base_id, {
    filename: "upload.pdf",
    pages: [{ text: "page" }],
  });
  return { id: kb.knowledge_base_id, files: [file] };
}

const intact = (temp: { files: { minio_filename: string; images: { minio_filename: string }[] }[] }) => ({
  knowledgeBaseDocument: true,
  filesDocuments: 1,
  milvusCollection: true,
  s3Objects: objectKeysOf(temp.files as never),
});

test("cleanupOrphanedTempKnowledgeBases deletes the caller's temp bases whose conversation or chatflow is gone, and nothing else", async () => {
  const live = await writer.createConversation("alice", "live");
  const workflow = await writer.createWorkflow("alice", "wf");
  const liveChatflow = await writer.createChatflow("alice", workflow.workflow_id, "live flow");
  const kept = [
    await tempKnowledgeBase("alice", live.conversation_id),
    await tempKnowledgeBase("alice", liveChatflow.chatflow_id),
  ];
  const orphan = await tempKnowledgeBase("alice", `alice_${randomUUID()}`);
  const normal = await writer.createKnowledgeBase("alice", "normal");
  const bobsOrphan = await tempKnowledgeBase("bob", `bob_${randomUUID()}`);
  // Bob's conversation with the same id as one of alice's parents does not keep alice's base alive.
  const spoofParent = `alice_${randomUUID()}`;
  const spoofed = await tempKnowledgeBase("alice", spoofParent);
  await mongoCollections(gw.app.stores.mongo.db).conversations.insertOne({
    ...(await writer.createConversation("bob", "x")),
    conversation_id: spoofParent,
  });

  const response = await gw.query<{ cleanupOrphanedTempKnowledgeBases: string[] }>(CLEANUP, {
    token: await gw.token("alice"),
  });
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  assert.deepEqual([...response.data!.cleanupOrphanedTempKnowledgeBases].sort(), [orphan.id, spoofed.id].sort());
  assert.deepEqual(await knowledgeBaseTraces(gw.app.stores, orphan.id, orphan.files), NOTHING_LEFT);
  assert.deepEqual(await knowledgeBaseTraces(gw.app.stores, spoofed.id, spoofed.files), NOTHING_LEFT);
  for (const temp of kept)
    assert.deepEqual(await knowledgeBaseTraces(gw.app.stores, temp.id, temp.files), intact(temp));
  assert.deepEqual(await knowledgeBaseTraces(gw.app.stores, bobsOrphan.id, bobsOrphan.files), intact(bobsOrphan));
  assert.equal(
    await mongoCollections(gw.app.stores.mongo.db).knowledgeBases.countDocuments({
      knowledge_base_id: normal.knowledge_base_id,
    }),
    1,
  );
});

test("allUsers needs an operator username: others get FORBIDDEN and nothing changes; an operator cleans every user's data", async () => {
  const bobsOrphan = await tempKnowledgeBase("bob", `bob_${randomUUID()}`);
  const carolsOrphan = await tempKnowledgeBase("carol", `carol_${randomUUID()}`);
  const refused = await gw.query(CLEANUP, { token: await gw.token("alice"), variables: { all: true } });
  assert.equal(codeOf(refused), "FORBIDDEN");
  assert.deepEqual(await knowledgeBaseTraces(gw.app.stores, bobsOrphan.id, bobsOrphan.files), intact(bobsOrphan));

  const response = await gw.query<{ cleanupOrphanedTempKnowledgeBases: string[] }>(CLEANUP, {
    token: await gw.token("ops"),
    variables: { all: true },
  });
  assert.equal(response.errors, undefined);
  assert.ok(response.data!.cleanupOrphanedTempKnowledgeBases.includes(bobsOrphan.id));
  assert.ok(response.data!.cleanupOrphanedTempKnowledgeBases.includes(carolsOrphan.id));
  for (const temp of [bobsOrphan, carolsOrphan])
    assert.deepEqual(await knowledgeBaseTraces(gw.app.stores, temp.id, temp.files), NOTHING_LEFT);
});

test("start-up ensures LAYRA's indexes under LAYRA's names plus the workflow_id fixes, idempotently", async () => {
  const mongo = mongoCollections(gw.app.stores.mongo.db);
  for (const plan of INDEX_PLAN) {
    const indexes = await mongo[plan.collection].listIndexes().toArray();
    const found = indexes.find((index) => index.name === plan.name);
    assert.ok(found, `${plan.collection}.${plan.name} exists`);
    assert.deepEqual(found.key, plan.keys, plan.name);
    assert.equal(Boolean(found.unique), Boolean(plan.unique), plan.name);
  }
  const chatflowIndexes = await mongo.chatflows.listIndexes().toArray();
  assert.deepEqual(chatflowIndexes.find((index) => index.name === "gateway_chatflows_by_workflow_id")?.key, {
    workflow_id: 1,
    last_modify_at: -1,
  });
  assert.deepEqual(
    (await mongo.workflows.listIndexes().toArray()).find((index) => index.name === "gateway_workflows_by_workflow_id")
      ?.key,
    { workflow_id: 1 },
  );

  // LAYRA's own start-up repeats its create_index calls: with the same names and keys they are no-ops.
  await gw.app.stores.mongo.ensureIndexes();
  await mongo.knowledgeBases.createIndex({ knowledge_base_id: 1 }, { name: "unique_kb_id", unique: true });
  await mongo.chatflows.createIndex({ workflow: 1, last_modify_at: -1 }, { name: "workflow_chatflows" });
  assert.equal((await mongo.chatflows.listIndexes().toArray()).length, chatflowIndexes.length);

  // The unique index holds (it is what keeps LAYRA's ids unique).
  const workflow = await writer.createWorkflow("alice", "wf");
  const chatflow = await writer.createChatflow("alice", workflow.workflow_id, "c");
  await assert.rejects(mongo.chatflows.insertOne({ ...chatflow }), (error: { code?: number }) => error.code === 11000);

  // Only MongoDB's plan shows whether LAYRA's chatflows-by-workflow query uses the index. FerretDB 1.24
  // on SQLite filters in its own process (no filter pushdown) and so uses no index for it: there the
  // index's existence and keys above are all that can be checked, and the plan is checked to still say so.
  const plan = (await mongo.chatflows
    .find({ workflow_id: workflow.workflow_id, is_delete: false })
    .sort({ last_modify_at: -1 })
    .explain()) as { serverInfo?: { ferretdbVersion?: string }; filterPushdown?: boolean };
  if (plan.serverInfo?.ferretdbVersion !== undefined)
    assert.equal(plan.filterPushdown, false, "FerretDB now pushes filters down: check that the index is used");
  else assert.match(JSON.stringify(plan), /gateway_chatflows_by_workflow_id/);
});

test("start-up does not wait for Mongo: with Mongo down the gateway starts, and the indexes are created once Mongo is back", async () => {
  const mongoStack = await privateStack(["mongo"]);
  await mongoStack.stopServer("mongo");
  const down = await startGatewayWithoutMongo({ ...stack.env, MONGODB_URL: mongoStack.env.MONGODB_URL });
  try {
    const health = await fetch(`${down.url}/health`);
    assert.equal(health.status, 200);
    const report = await down.query<{ health: { stores: { store: string; up: boolean }[] } }>(
      `{ health { stores { store up } } }`,
    );
    assert.equal(report.data!.health.stores.find((s) => s.store === "mongo")?.up, false);
    const write = await down.query(`mutation { createConversation(name: "x") { conversationId } }`, {
      token: await down.token("alice"),
    });
    assert.equal(
      write.errors?.[0]?.extensions?.code,
      "UPSTREAM_UNAVAILABLE",
      "a write with Mongo down fails with a typed error",
    );
    assert.equal(write.errors?.[0]?.extensions?.store, "mongo");
    await mongoStack.startServer("mongo");
    await down.app.indexesReady;
    const names = (await mongoCollections(down.app.stores.mongo.db).chatflows.listIndexes().toArray()).map(
      (index) => index.name,
    );
    assert.ok(names.includes("gateway_chatflows_by_workflow_id"));
    // Requests read Mongo again (the driver's topology closed by the failed first connect is reopened).
    const read = await down.query<{ me: { knowledgeBases: { totalCount: number } } }>(
      `{ me { knowledgeBases { totalCount } } }`,
      { token: await down.token("alice") },
    );
    assert.deepEqual(read, { status: 200, data: { me: { knowledgeBases: { totalCount: 0 } } } });
  } finally {
    await down.close();
    await mongoStack.close();
  }
});

// Ownership read from ids and object keys (issue: `{username}_` prefix tests): keys and stored URLs
// are parsed by LAYRA's full shape, never normalised, and signed only for their exact owner; ids
// `{username}_{uuid4}` and `temp_{parentId}_{uuid4}` are parsed whole, so `ann` gets nothing of
// `ann_x`'s and a cleanup never deletes on a misread id.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import type { Redis } from "ioredis";
import { LayraWriter, layraTurn, storedUrl } from "../dev/layra-writer.js";
import type { FileDoc } from "../src/stores/documents.js";
import { gatewayForFile, redisClient, type TestGateway } from "./helpers.js";
import { wsOperation } from "./ws.js";

const file = gatewayForFile({ PROGRESS_MISSING_KEY_WAIT_MS: "300" });
let gw: TestGateway;
let writer: LayraWriter;
let bobFile: FileDoc;
/** LAYRA's task database, where its progress hashes are written. */
let taskDb: Redis;
type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

const codeOf = (response: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  response.errors?.[0]?.extensions?.code;
const ADD_TURN = `mutation($id: String!, $input: AddTurnInput!) { addTurn(conversationId: $id, input: $input) { messageId } }`;

before(async () => {
  gw = await file.ready;
  taskDb = redisClient(gw.config, "task");
  writer = new LayraWriter(gw.app.stores, gw.config.model.url);
  const kb = await writer.createKnowledgeBase("bob", "Bob's");
  bobFile = await writer.ingestFile("bob", kb.knowledge_base_id, { filename: "secret.pdf", pages: [{ text: "x" }] });
});
after(() => taskDb.disconnect());

test("addTurn refuses keys and URLs that only start with the caller's name, and more than 50 of them", async () => {
  const alice = await gw.token("alice");
  const conversation = await writer.createConversation("alice", "probe");
  const bobPage = bobFile.images[0]!.minio_filename;
  const bucket = gw.config.s3.bucket;
  const page = { score: 1, knowledgeDbId: "x", fileName: "x" };
  const bad = [
    { imageKeys: [`alice_/../${bobPage}`] },
    { imageKeys: [`alice_%2F..%2F${bobPage}`] },
    { imageKeys: [bobPage] },
    { imageKeys: Array.from({ length: 51 }, () => `alice_p_${"0".repeat(24)}.png`) },
    {
      fileUsed: [{ ...page, imageUrl: storedUrl(`alice_/../${bobPage}`, bucket), fileUrl: storedUrl(bobPage, bucket) }],
    },
    {
      fileUsed: [
        {
          ...page,
          imageUrl: `http://h/${bucket}/alice_%2F..%2F${encodeURIComponent(bobPage)}`,
          fileUrl: `http://h/${bucket}/alice_x/../../${bucket}/${bobPage}`,
        },
      ],
    },
  ];
  for (const extra of bad) {
    const response = await gw.query(ADD_TURN, {
      token: alice,
      variables: { id: conversation.conversation_id, input: { userMessage: "q", aiMessage: "a", ...extra } },
    });
    assert.equal(codeOf(response), "BAD_USER_INPUT", JSON.stringify(extra).slice(0, 200));
  }
  // 20,000 keys never reach the resolver: every input list is bounded (MAX_INPUT_LIST_LENGTH).
  const huge = await gw.query(ADD_TURN, {
    token: alice,
    variables: {
      id: conversation.conversation_id,
      input: { userMessage: "q", aiMessage: "a", imageKeys: Array.from({ length: 20_000 }, () => "alice_p") },
    },
  });
  assert.equal(codeOf(huge), "LIMIT_EXCEEDED");
  const stored = await gw.app.stores.mongo.db
    .collection("conversations")
    .findOne({ conversation_id: conversation.conversation_id });
  assert.equal(stored!.turns.length, 0, "nothing was written");
});

test("turns render presigned URLs only for the caller's own keys, however the stored key or URL is dressed", async () => {
  const bobPage = bobFile.images[0]!.minio_filename;
  const bucket = gw.config.s3.bucket;
  const turn = layraTurn("q", {
    pageKey: `alice_/../${bobPage}`,
    fileUsed: [
      {
        score: 1,
        knowledge_db_id: "x",
        file_name: "x",
        image_url: `http://h/${bucket}/alice_%2F..%2F${encodeURIComponent(bobPage)}?X=1`,
        file_url: storedUrl(bobFile.minio_filename, bucket),
      },
    ],
  });
  const conversation = await writer.createConversation("alice", "stored", [turn]);
  const result = await gw.query<{ conversation: Json }>(
    `query($id: String!) { conversation(conversationId: $id) { turns { edges { node {
      userMessageParts { type imageUrl } retrievedPages { imageUrl fileUrl } } } } } }`,
    { token: await gw.token("alice"), variables: { id: conversation.conversation_id } },
  );
  assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  const node = result.data!.conversation.turns.edges[0].node;
  assert.deepEqual(node.userMessageParts[0], { type: "image_url", imageUrl: null });
  assert.deepEqual(node.retrievedPages[0], { imageUrl: null, fileUrl: null });
});

test("taskProgress: `ann` gets NOT_FOUND for `ann_x`'s task, exactly like a missing one", async () => {
  const taskId = `ann_x_${randomUUID()}`;
  await taskDb.hset(`task:${taskId}`, {
    status: "processing",
    total: "2",
    processed: "1",
    message: "m",
  });
  const subscribe = async (username: string) =>
    wsOperation(
      gw.url,
      { query: `subscription($id: String!) { taskProgress(taskId: $id) { status end } }`, variables: { id: taskId } },
      { Authorization: `Bearer ${await gw.token(username)}` },
    );
  const ann = await subscribe("ann");
  assert.deepEqual(
    ann.results.map((r) => (r.data as Json).taskProgress),
    [{ status: null, end: "NOT_FOUND" }],
  );
  const owner = wsOperation(
    gw.url,
    { query: `subscription($id: String!) { taskProgress(taskId: $id) { status end } }`, variables: { id: taskId } },
    { Authorization: `Bearer ${await gw.token("ann_x")}` },
  );
  // Completing the task ends the owner's stream (whether she subscribed before or after this write).
  await taskDb.hset(`task:${taskId}`, { status: "completed", processed: "2" });
  const own = await owner;
  assert.equal((own.results.at(-1)!.data as Json).taskProgress.end, "COMPLETED");
});

test("cleanupOrphanedTempKnowledgeBases by `ann_x` keeps her live temp base (LAYRA's split parse deletes it)", async () => {
  const live = await writer.createConversation("ann_x", "live");
  const temp = await writer.createKnowledgeBase("ann_x", "temp_base_live", {
    id: `temp_${live.conversation_id}_${randomUUID()}`,
    temp: true,
  });
  const orphan = await writer.createKnowledgeBase("ann_x", "temp_base_gone", {
    id: `temp_ann_x_${randomUUID()}_${randomUUID()}`,
    temp: true,
  });
  // A temp base whose id does not parse as its own user's: ambiguous, never deleted.
  const odd = await writer.createKnowledgeBase("ann_x", "odd", { id: `temp_ann_${randomUUID()}`, temp: true });
  const result = await gw.query<{ cleanupOrphanedTempKnowledgeBases: string[] }>(
    `mutation { cleanupOrphanedTempKnowledgeBases }`,
    { token: await gw.token("ann_x") },
  );
  assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  assert.deepEqual(result.data!.cleanupOrphanedTempKnowledgeBases, [orphan.knowledge_base_id]);
  const left = await gw.app.stores.mongo.db.collection("knowledge_bases").countDocuments({
    knowledge_base_id: { $in: [temp.knowledge_base_id, odd.knowledge_base_id] },
  });
  assert.equal(left, 2);
});

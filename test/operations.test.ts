// The seed's operations toolkit: storeStats for operators, and the cron command (indexes, orphaned temp
// knowledge bases, page codes of files that are gone) run as a separate process against the same stores.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import type { Redis } from "ioredis";
import { collectionName } from "../src/stores/milvus.js";
import { LayraWriter, layraId } from "../dev/layra-writer.js";
import { gatewayForFile, redisClient } from "./helpers.js";
import { mongoCollections } from "../src/stores/mongo.js";
import { pageCodeObjectKey } from "../src/stores/page-code-objects.js";
import { ORPHAN_MIN_AGE_MS, sweepOrphanedPageCodes } from "../src/resolvers/page-code-sweep.js";

const file = gatewayForFile({ OPERATOR_USERNAMES: "ops" });
type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any
/** LAYRA's task database, where a large progress hash is planted for the stats to find. */
let taskDb: Redis;

before(async () => {
  taskDb = redisClient((await file.ready).config, "task");
});
after(() => taskDb.disconnect());

const STATS = `{ storeStats { collections { collection knowledgeBaseId rowCount indexType indexParams metricType loaded }
  redisUsedMemoryBytes redisDatabases { purpose db keys } largestRedisKeyPatterns { db pattern keys bytes largestBytes } mongoProfilingLevel mongoSlowOperations { op } } }`;

test("storeStats: Milvus rows and index per knowledge base, Redis memory and keys per database, for operators only", async () => {
  const { gateway, env } = file;
  const writer = new LayraWriter(gateway.app.stores, env.MODEL_SERVER_URL!);
  const kb = await writer.createKnowledgeBase("statsuser", "Stats");
  await writer.ingestFile("statsuser", kb.knowledge_base_id, {
    filename: "s.pdf",
    pages: [
      { text: "a b", tokens: 120 },
      { text: "c", tokens: 130 },
    ],
  });
  const big = `task:statsuser_${randomUUID()}`;
  await taskDb.hset(big, { status: "processing", message: "x".repeat(50_000) });

  const denied = await gateway.query(STATS, { token: await gateway.token("statsuser") });
  assert.equal(denied.errors?.[0]?.extensions?.code, "FORBIDDEN");
  assert.deepEqual(denied.data, { storeStats: null });

  const result = await gateway.query<{ storeStats: Json }>(STATS, { token: await gateway.token("ops") });
  assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  const stats = result.data!.storeStats;
  const collection = stats.collections.find((c: Json) => c.collection === collectionName(kb.knowledge_base_id));
  assert.deepEqual(collection, {
    collection: collectionName(kb.knowledge_base_id),
    knowledgeBaseId: kb.knowledge_base_id,
    rowCount: 250,
    indexType: "HNSW",
    indexParams: { M: 32, efConstruction: 500 },
    metricType: "IP",
    loaded: true,
  });
  assert.ok(stats.redisUsedMemoryBytes > 0);
  assert.deepEqual(
    stats.redisDatabases.map((d: Json) => [d.purpose, d.db]),
    [
      ["token", 0],
      ["task", 1],
      ["lock", 2],
      ["cache", 3],
    ],
  );
  assert.ok(stats.redisDatabases.find((d: Json) => d.purpose === "task").keys >= 1);
  const tasks = stats.largestRedisKeyPatterns.find((p: Json) => p.db === 1 && p.pattern === "task:*");
  assert.ok(tasks.keys >= 1 && tasks.largestBytes > 50_000 && tasks.bytes >= tasks.largestBytes, JSON.stringify(tasks));
  // Token keys are credentials: the view names their pattern, never a key.
  const tokens = stats.largestRedisKeyPatterns.find((p: Json) => p.db === 0 && p.pattern === "token:*");
  assert.ok(tokens.keys >= 2, JSON.stringify(tokens));
  const body = JSON.stringify(result);
  assert.ok(!body.includes("eyJ") && !body.includes(big), "no key value (no JWT, no task id) in the response");
  assert.equal(stats.mongoProfilingLevel, null, "FerretDB does not report a profiling level");
  await taskDb.del(big);
});

test("the cron command ensures the indexes and deletes orphaned temp knowledge bases of every user", async () => {
  const { gateway, env } = file;
  const { milvus } = gateway.app.stores;
  const mongo = mongoCollections(gateway.app.stores.mongo.db);
  const writer = new LayraWriter(gateway.app.stores, env.MODEL_SERVER_URL!);
  const live = await writer.createConversation("cronuser", "live");
  const liveTemp = await writer.createKnowledgeBase("cronuser", "temp_base_live", {
    id: `temp_${live.conversation_id}_${randomUUID()}`,
    temp: true,
  });
  const orphan = await writer.createKnowledgeBase("cronuser", "temp_base_gone", {
    id: `temp_${layraId("cronuser")}_${randomUUID()}`,
    temp: true,
  });
  const otherOrphan = await writer.createKnowledgeBase("someone", "temp_base_gone", {
    id: `temp_${layraId("someone")}_${randomUUID()}`,
    temp: true,
  });
  await mongo.chatflows.dropIndex("gateway_chatflows_by_workflow_id").catch(() => undefined);

  const run = await promisify(execFile)(process.execPath, ["--import", "tsx", "src/cli/maintenance.ts"], {
    env: {
      ...process.env,
      ...env,
      SECRET_KEY: "x",
      MONGODB_DB: gateway.config.mongo.database,
      MINIO_BUCKET_NAME: gateway.config.s3.bucket,
      NODE_ENV: "test",
    },
  });
  const summary = JSON.parse(run.stdout.trim().split("\n").pop()!) as {
    orphanedTempKnowledgeBasesDeleted: string[];
    orphanedPageCodes: { checked: number; removed: number };
  };
  assert.equal(typeof summary.orphanedPageCodes.checked, "number", JSON.stringify(summary));
  assert.deepEqual(
    summary.orphanedTempKnowledgeBasesDeleted.sort(),
    [orphan.knowledge_base_id, otherOrphan.knowledge_base_id].sort(),
  );
  assert.ok(
    await mongo.knowledgeBases.findOne({ knowledge_base_id: liveTemp.knowledge_base_id }),
    "a temp base of a live conversation stays",
  );
  for (const gone of [orphan, otherOrphan]) {
    assert.equal(await mongo.knowledgeBases.findOne({ knowledge_base_id: gone.knowledge_base_id }), null);
    assert.equal(
      (await milvus.client.hasCollection({ collection_name: collectionName(gone.knowledge_base_id) })).value,
      false,
    );
  }
  const indexes = await mongo.chatflows.listIndexes().toArray();
  assert.ok(
    indexes.some((index) => index.name === "gateway_chatflows_by_workflow_id"),
    "the index fix is back",
  );
});

test("the page-code sweep removes the objects of files that have no document once they are old enough, and nothing else", async () => {
  const { gateway } = file;
  const { s3 } = gateway.app.stores;
  const mongo = mongoCollections(gateway.app.stores.mongo.db);
  const live = layraId("sweepuser");
  const gone = layraId("sweepuser");
  await mongo.files.insertOne({
    file_id: live,
    filename: "live.pdf",
    username: "sweepuser",
    minio_filename: "",
    minio_url: "",
    knowledge_db_id: layraId("sweepuser"),
    images: [],
    created_at: new Date(),
    last_modify_at: new Date(),
    is_delete: false,
  });
  const keys = {
    live: pageCodeObjectKey(live),
    gone: pageCodeObjectKey(gone),
    // Not a file id: not the gateway's to judge.
    odd: "page-codes/not-a-file-id",
    // LAYRA's own objects live outside the prefix.
    layra: `sweepuser_page_${"0".repeat(24)}.png`,
  };
  for (const key of Object.values(keys)) await s3.putObject(key, Buffer.from("codes"), "application/octet-stream");
  const present = async () =>
    Object.fromEntries(
      await Promise.all(Object.entries(keys).map(async ([name, key]) => [name, (await s3.objectInfo(key)) !== null])),
    );

  const young = await sweepOrphanedPageCodes(gateway.app, ORPHAN_MIN_AGE_MS);
  assert.ok(young.checked >= 3, JSON.stringify(young));
  assert.equal(young.removed, 0, "objects younger than a day are kept: the worker writes them before the document");
  assert.deepEqual(await present(), { live: true, gone: true, odd: true, layra: true });

  const swept = await sweepOrphanedPageCodes(gateway.app, 0);
  assert.equal(swept.removed, 1, JSON.stringify(swept));
  assert.deepEqual(await present(), { live: true, gone: false, odd: true, layra: true });
});

// The ingestion worker under faults, on a Kafka broker and a model server of this file's own (the
// other stores are shared): a broker restart while idle and in the middle of a file, a model-server
// outage in the middle of a file, a knowledge base deleted during its ingestion; and the raw bytes
// of a record the gateway produces (no key, as LAYRA's producer).
import assert from "node:assert/strict";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, test } from "node:test";
import { Admin } from "@platformatic/kafka";
import type { Redis } from "ioredis";
import type { LocalStack } from "../dev/stack/stack.js";
import { collectionName } from "../src/stores/milvus.js";
import { mongoCollections } from "../src/stores/mongo.js";
import { createKafkaStore } from "../src/stores/kafka.js";
import {
  eventually,
  privateStack,
  redisClient,
  sharedStackEnv,
  startGateway,
  testConfig,
  type TestGateway,
} from "./helpers.js";
import {
  createTopic,
  ingestOverrides,
  multipartRequest,
  samplePdf,
  samplePng,
  spawnWorker,
  startWorkers,
  UPLOAD_FILES,
  waitFor,
  type UploadTaskResult,
} from "./ingest-helpers.js";

const overrides = ingestOverrides({ EMBEDDING_BATCH_PAGES: "1", KAFKA_SESSION_TIMEOUT_MS: "6000" });
let stack: LocalStack;
let shared: Awaited<ReturnType<typeof sharedStackEnv>>;
/** The shared stores, with this file's broker and model server. */
let env: Record<string, string>;
let gateway: TestGateway;
let taskDb: Redis;
let token: string;

before(async () => {
  shared = await sharedStackEnv();
  stack = await privateStack(["kafka", "model"]);
  env = { ...shared.env, KAFKA_BROKER_URL: stack.env.KAFKA_BROKER_URL, MODEL_SERVER_URL: stack.env.MODEL_SERVER_URL };
  gateway = await startGateway(env, overrides);
  taskDb = redisClient(gateway.config, "task");
  await createTopic(gateway.config, 1);
  token = await gateway.token("ann");
});

after(async () => {
  taskDb?.disconnect();
  await gateway?.close();
  await stack?.close();
  await shared?.close();
});

const taskHash = (taskId: string) => taskDb.hgetall(`task:${taskId}`);

async function createKnowledgeBase(name: string): Promise<string> {
  const created = await gateway.query<{ createKnowledgeBase: { knowledgeBaseId: string } }>(
    `mutation($name: String!) { createKnowledgeBase(name: $name) { knowledgeBaseId } }`,
    { token, variables: { name } },
  );
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  return created.data!.createKnowledgeBase.knowledgeBaseId;
}

async function upload(knowledgeBaseId: string, name: string, bytes: Buffer, type = "application/pdf") {
  const uploaded = await multipartRequest<{ uploadFiles: UploadTaskResult }>(
    gateway,
    token,
    UPLOAD_FILES,
    { knowledgeBaseId },
    [{ name, type, bytes }],
  );
  assert.equal(uploaded.errors, undefined, JSON.stringify(uploaded.errors));
  return uploaded.data!.uploadFiles;
}

const pagesDone = async (taskId: string) => Number((await taskHash(taskId)).file_pages_done ?? 0);

/** The task ended with its one file ingested, and the file is in the stores once: one document, one ref, its rows only. */
async function assertCompletedOnce(task: UploadTaskResult) {
  await waitFor("the task to end", async () => (await taskHash(task.taskId)).status !== "processing");
  const hash = await taskHash(task.taskId);
  assert.equal(hash.status, "completed", JSON.stringify(hash));
  assert.equal(hash.processed, "1");
  assert.equal(hash.failed ?? "0", "0", JSON.stringify(hash));
  const fileId = task.files[0]!.id;
  const mongo = mongoCollections(gateway.app.stores.mongo.db);
  const docs = await mongo.files.find({ file_id: fileId }).toArray();
  assert.equal(docs.length, 1, "one files document");
  const kb = await mongo.knowledgeBases.findOne({ knowledge_base_id: task.knowledgeBaseId });
  assert.equal(kb!.files.filter((ref) => ref.file_id === fileId).length, 1, "one ref in the knowledge base");
  const rows = await gateway.app.stores.milvus.client.query({
    collection_name: collectionName(task.knowledgeBaseId),
    filter: `file_id == ${JSON.stringify(fileId)}`,
    output_fields: ["image_id"],
    limit: 16384,
  });
  // A second ingestion would add rows under image ids of its own.
  assert.deepEqual(
    new Set((rows.data as { image_id: string }[]).map((row) => row.image_id)),
    new Set(docs[0]!.images.map((image) => image.images_id)),
  );
}

const health = async (metricsUrl: string) => (await fetch(metricsUrl.replace(/\/metrics$/, "/health"))).status;

/** Stops the broker until `whileDown` is done (and at least `minimumMs`), then starts it on the same port. */
async function brokerOutage(minimumMs: number, whileDown: () => Promise<void>) {
  await stack.stopServer("kafka");
  try {
    await Promise.all([sleep(minimumMs), whileDown()]);
  } finally {
    await stack.startServer("kafka");
  }
}

test("a record the gateway produces has a null key, as LAYRA's producer sends it (read from the broker's log)", async () => {
  const topic = `t_rawkey_${Date.now()}`;
  const kafka = createKafkaStore(testConfig(env, overrides));
  try {
    await kafka.ensureTopic(topic, 1);
    await kafka.produce([{ value: Buffer.from('{"task_id":"x"}'), headers: { priority: "1" } }], topic);
  } finally {
    await kafka.close();
  }
  // The segment file holds the batch as sent: a 61-byte batch header, then the record.
  const log = await readFile(join(stack.root, "kafka", "log", `${topic}-0`, "00000000000000000000.log"));
  assert.equal(log.readInt8(16), 2, "a v2 record batch");
  assert.equal(log.readInt16BE(21) & 0x07, 0, "not compressed");
  assert.equal(log.readInt32BE(57), 1, "one record");
  let position = 61;
  /** A zigzag varint, as Kafka writes record fields. */
  const varint = () => {
    let raw = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = log[position++]!;
      raw |= (byte & 0x7f) << shift;
      if (byte < 0x80) return (raw >>> 1) ^ -(raw & 1);
    }
  };
  varint(); // record length
  position += 1; // attributes
  varint(); // timestamp delta
  assert.equal(varint(), 0, "offset delta");
  assert.equal(varint(), -1, "the key length is -1 (null), not 0 (an empty key)");
  assert.equal(varint(), '{"task_id":"x"}'.length, "then the value");
});

test("the worker survives broker restarts (idle, then in the middle of a file), says so on /health, and ingests exactly once", async () => {
  const workers = await startWorkers(gateway, env, overrides, 1);
  const metricsUrl = workers.metricsUrls[0]!;
  // A second worker that gives up quickly: it must exit non-zero, not idle on as if healthy.
  const impatientGroup = `${overrides.KAFKA_GROUP_ID}-impatient`;
  const impatient = spawnWorker(gateway, env, {
    ...overrides,
    KAFKA_GROUP_ID: impatientGroup,
    KAFKA_RECONNECT_PATIENCE_MS: "1000",
  });
  const impatientExit = once(impatient, "exit") as Promise<[number | null, string | null]>;
  const admin = new Admin({ clientId: "test", bootstrapBrokers: gateway.config.kafka.brokers });
  try {
    await waitFor("the impatient worker to join its group", async () => {
      const group = (await admin.describeGroups({ groups: [impatientGroup] })).get(impatientGroup);
      return group?.state === "STABLE" && group.members.size === 1;
    });
    await admin.close();
    const kb = await createKnowledgeBase("restarts");
    assert.equal(await health(metricsUrl), 200);

    // Idle: the broker goes for ~5 s; the worker reports it, then rejoins.
    await brokerOutage(5_000, async () => {
      await eventually(async () => (await health(metricsUrl)) === 503, "/health to report the lost consumer", 60_000);
      const [code] = await impatientExit;
      assert.equal(code, 1, "the worker that gave up exited with code 1");
    });
    await eventually(async () => (await health(metricsUrl)) === 200, "the worker to rejoin", 120_000);
    const afterIdle = await upload(kb, "after-idle.png", samplePng("after the idle outage"), "image/png");
    await assertCompletedOnce(afterIdle);

    // In the middle of a file: its pages go on (only Kafka is gone); the offset commit may fail, and the
    // redelivered message is then found done.
    const pdf = await samplePdf(Array.from({ length: 10 }, (_, i) => `restart page ${i + 1}`));
    const midFile = await upload(kb, "mid-file.pdf", pdf);
    await waitFor("the first pages", async () => (await pagesDone(midFile.taskId)) >= 2, 120_000);
    await brokerOutage(5_000, async () => {
      await eventually(async () => (await health(metricsUrl)) === 503, "/health to report the lost consumer", 60_000);
    });
    await assertCompletedOnce(midFile);
    await eventually(async () => (await health(metricsUrl)) === 200, "the worker to rejoin", 120_000);

    // And an upload after the restart is ingested too.
    const afterMidFile = await upload(kb, "after-mid-file.png", samplePng("after the second outage"), "image/png");
    await assertCompletedOnce(afterMidFile);
    const metrics = await (await fetch(metricsUrl)).text();
    assert.match(metrics, /ingest_files_total\{outcome="ingested"\} 3\b/, "three files ingested, each once");
  } finally {
    await admin.close();
    impatient.kill("SIGKILL");
    await workers();
  }
});

test("a model-server outage of ~10 s in the middle of a file does not fail it", async () => {
  const workers = await startWorkers(gateway, env, overrides, 1);
  try {
    const kb = await createKnowledgeBase("model outage");
    const pdf = await samplePdf(Array.from({ length: 8 }, (_, i) => `model page ${i + 1}`));
    const task = await upload(kb, "model-outage.pdf", pdf);
    await waitFor("the first page", async () => (await pagesDone(task.taskId)) >= 1, 120_000);
    await stack.stopServer("model");
    try {
      await sleep(10_000);
    } finally {
      await stack.startServer("model");
    }
    await assertCompletedOnce(task);
    const objectKey = (await mongoCollections(gateway.app.stores.mongo.db).files.findOne({
      file_id: task.files[0]!.id,
    }))!.minio_filename;
    assert.notEqual(await gateway.app.stores.s3.getObject(objectKey), null, "the original is kept");
  } finally {
    await workers();
  }
});

test("a knowledge base deleted during ingestion is not resurrected: no collection, no documents, no objects", async () => {
  const workers = await startWorkers(gateway, env, overrides, 1);
  try {
    const kb = await createKnowledgeBase("deleted while ingesting");
    const pdf = await samplePdf(Array.from({ length: 16 }, (_, i) => `doomed page ${i + 1}`));
    const task = await upload(kb, "doomed.pdf", pdf);
    await waitFor("the first pages", async () => (await pagesDone(task.taskId)) >= 2, 120_000);
    // The worker holds the base's lock for a moment per batch: a delete then answers CONFLICT, and is sent again.
    await eventually(async () => {
      const deleted = await gateway.query<{ deleteKnowledgeBase: string }>(
        `mutation($id: String!) { deleteKnowledgeBase(knowledgeBaseId: $id) }`,
        { token, variables: { id: kb } },
      );
      if (deleted.errors?.[0]?.extensions?.code === "CONFLICT") return false;
      assert.equal(deleted.errors, undefined, JSON.stringify(deleted.errors));
      return true;
    }, "the delete to go through");
    await waitFor("the task to end", async () => (await taskHash(task.taskId)).status !== "processing");
    const hash = await taskHash(task.taskId);
    assert.equal(hash.status, "failed", JSON.stringify(hash));
    assert.match(hash.message ?? "", /deleted during ingestion/);

    const { milvus, s3, mongo } = gateway.app.stores;
    const collection = await milvus.client.hasCollection({ collection_name: collectionName(kb) });
    assert.equal(collection.value, false, "no Milvus collection re-created for the deleted base");
    assert.equal(await mongoCollections(mongo.db).files.countDocuments({ knowledge_db_id: kb }), 0);
    assert.equal(await mongoCollections(mongo.db).knowledgeBases.countDocuments({ knowledge_base_id: kb }), 0);
    const objects: string[] = [];
    for await (const item of s3.client.listObjectsV2(s3.bucket, "ann_doomed_", true)) objects.push(String(item.name));
    assert.deepEqual(objects, [], "no original, no page objects");
  } finally {
    await workers();
  }
});

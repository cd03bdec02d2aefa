// Delivery guarantees of the ingestion worker on a real Kafka broker: a worker killed with SIGKILL
// in the middle of a file and started again ingests it exactly once; two workers in one group share
// a four-partition topic and ingest twenty files once each; and LAYRA interoperates both ways (a
// message written the way LAYRA's producer writes it is ingested, the gateway's messages have
// LAYRA's shape field for field, and a workflow message is forwarded, not dropped).
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, test } from "node:test";
import { Admin, Consumer, Producer } from "@platformatic/kafka";
import type { Redis } from "ioredis";
import { ObjectId } from "mongodb";
import { collectionName } from "../src/stores/milvus.js";
import { gatewayForFile, redisClient } from "./helpers.js";
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
import { mongoCollections } from "../src/stores/mongo.js";

const overrides = ingestOverrides({ EMBEDDING_BATCH_PAGES: "1", KAFKA_SESSION_TIMEOUT_MS: "6000" });
const state = gatewayForFile(overrides);
let token: string;
let knowledgeBaseId: string;
/** LAYRA's task database: the workers' progress is read there, and LAYRA's upload endpoint writes there. */
let taskDb: Redis;

before(async () => {
  const gateway = await state.ready;
  taskDb = redisClient(gateway.config, "task");
  await createTopic(gateway.config, 4);
  token = await gateway.token("ann");
  const created = await gateway.query<{ createKnowledgeBase: { knowledgeBaseId: string } }>(
    `mutation { createKnowledgeBase(name: "delivery") { knowledgeBaseId } }`,
    { token },
  );
  assert.equal(created.errors, undefined);
  knowledgeBaseId = created.data!.createKnowledgeBase.knowledgeBaseId;
});

after(() => taskDb.disconnect());

const taskHash = (taskId: string) => taskDb.hgetall(`task:${taskId}`);

async function upload(files: { name: string; type: string; bytes: Buffer }[]): Promise<UploadTaskResult> {
  const uploaded = await multipartRequest<{ uploadFiles: UploadTaskResult }>(
    state.gateway,
    token,
    UPLOAD_FILES,
    { knowledgeBaseId },
    files,
  );
  assert.equal(uploaded.errors, undefined, JSON.stringify(uploaded.errors));
  return uploaded.data!.uploadFiles;
}

async function rowsOf(fileId: string): Promise<{ image_id: string; page_number: number }[]> {
  const rows = await state.gateway.app.stores.milvus.client.query({
    collection_name: collectionName(knowledgeBaseId),
    filter: `file_id == ${JSON.stringify(fileId)}`,
    output_fields: ["image_id", "page_number"],
    limit: 16384,
  });
  return rows.data as { image_id: string; page_number: number }[];
}

/** The file is in the stores exactly once: one document, one ref, one row per token vector, its objects only. */
async function assertIngestedOnce(fileId: string, filenamePrefix: string) {
  const { s3, model } = state.gateway.app.stores;
  const mongo = mongoCollections(state.gateway.app.stores.mongo.db);
  const docs = await mongo.files.find({ file_id: fileId }).toArray();
  assert.equal(docs.length, 1, `one files document for ${fileId}`);
  const doc = docs[0]!;
  const kb = await mongo.knowledgeBases.findOne({ knowledge_base_id: knowledgeBaseId });
  assert.equal(kb!.files.filter((ref) => ref.file_id === fileId).length, 1, "one ref in the knowledge base");
  const pngs = await Promise.all(doc.images.map(async (image) => (await s3.getObject(image.minio_filename))!));
  const embeddings = await model.embedImages(pngs, doc.filename, 0);
  const rows = await rowsOf(fileId);
  assert.equal(
    rows.length,
    embeddings.reduce((sum, vectors) => sum + vectors.length, 0),
    "one Milvus row per token vector, no duplicates",
  );
  assert.deepEqual(new Set(rows.map((row) => row.image_id)), new Set(doc.images.map((image) => image.images_id)));
  const objects: string[] = [];
  for await (const item of s3.client.listObjectsV2(s3.bucket, filenamePrefix, true)) objects.push(String(item.name));
  assert.deepEqual(
    objects.sort(),
    [doc.minio_filename, ...doc.images.map((image) => image.minio_filename)].sort(),
    "the original and its pages, no orphan objects",
  );
}

test("a worker killed (SIGKILL) in the middle of a file, started again, ingests it exactly once", async () => {
  const pdf = await samplePdf(Array.from({ length: 24 }, (_, i) => `long page ${i + 1}`));
  const task = await upload([{ name: "long.pdf", type: "application/pdf", bytes: pdf }]);
  const fileId = task.files[0]!.id;
  const first = spawnWorker(state.gateway, state.env, overrides);
  // Kill it once some pages are in Milvus and before the document is written.
  await waitFor(
    "the first pages to be stored",
    async () => Number((await taskHash(task.taskId)).file_pages_done ?? 0) >= 2,
    120_000,
  );
  first.kill("SIGKILL");
  await once(first, "exit");
  const halfway = await rowsOf(fileId);
  assert.ok(halfway.length > 0, "the worker died with rows of the file in Milvus");
  assert.equal(
    await mongoCollections(state.gateway.app.stores.mongo.db).files.countDocuments({ file_id: fileId }),
    0,
    "and no document",
  );

  const second = spawnWorker(state.gateway, state.env, overrides);
  try {
    await waitFor("the task to complete", async () => (await taskHash(task.taskId)).status === "completed");
  } finally {
    second.kill("SIGTERM");
    await once(second, "exit");
  }
  const hash = await taskHash(task.taskId);
  assert.equal(hash.processed, "1");
  assert.equal(hash.message, "All files processed successfully");
  await assertIngestedOnce(fileId, "ann_long_");
});

test("two workers in one group on four partitions ingest twenty files, each exactly once", async () => {
  const workers = await startWorkers(state.gateway, state.env, overrides, 2);
  const admin = new Admin({ clientId: "test", bootstrapBrokers: state.gateway.config.kafka.brokers });
  try {
    // Both members must hold partitions before the files arrive, or one could take them all.
    await waitFor("a stable group of two", async () => {
      const group = (await admin.describeGroups({ groups: [state.gateway.config.kafka.groupId] })).get(
        state.gateway.config.kafka.groupId,
      );
      return group?.state === "STABLE" && group.members.size === 2;
    });
    const files = Array.from({ length: 20 }, (_, i) => ({
      name: `shared-${String(i).padStart(2, "0")}.png`,
      type: "image/png",
      bytes: samplePng(`picture ${i}`),
    }));
    const task = await upload(files);
    await waitFor("the task to complete", async () => (await taskHash(task.taskId)).status === "completed");
    const hash = await taskHash(task.taskId);
    assert.equal(hash.processed, "20");
    for (const file of task.files) await assertIngestedOnce(file.id, `ann_${file.filename.replace(".png", "")}_`);
    const perWorker = await Promise.all(
      workers.metricsUrls.map(async (url) => {
        const text = await (await fetch(url)).text();
        const count = (outcome: string) =>
          Number(new RegExp(`ingest_files_total\\{outcome="${outcome}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
        return { ingested: count("ingested"), skipped: count("skipped") };
      }),
    );
    assert.equal(
      perWorker.reduce((sum, worker) => sum + worker.ingested, 0),
      20,
      "each file ingested by exactly one worker",
    );
    // Each member had messages of its own partitions. Some may have reached it as a skip: a fetch
    // the first member sent before the second joined (a long poll over all four partitions) can
    // answer after the rebalance with messages now the second's, so both see those; whichever
    // comes second finds the file done (docs/ingestion.md, "Delivery: at least once, processed once").
    assert.ok(
      perWorker.every((worker) => worker.ingested + worker.skipped > 0),
      `both workers handled files: ${JSON.stringify(perWorker)}`,
    );
  } finally {
    await admin.close();
    await workers();
  }
});

test("interop: a LAYRA-written message is ingested, ours match LAYRA's shape, a workflow message is forwarded", async () => {
  const { config } = state.gateway;
  const { s3 } = state.gateway.app.stores;
  const mongo = mongoCollections(state.gateway.app.stores.mongo.db);
  // What the gateway produced so far, read by a group of the test's own from the start of the topic.
  const inspector = new Consumer({
    groupId: `${config.kafka.groupId}-inspect`,
    clientId: "inspect",
    bootstrapBrokers: config.kafka.brokers,
  });
  const producer = new Producer({ clientId: "layra", bootstrapBrokers: config.kafka.brokers });
  const workers = await startWorkers(state.gateway, state.env, overrides, 1);
  try {
    const stream = await inspector.consume({ topics: [config.kafka.topic], mode: "earliest", autocommit: false });
    const seen: { value: Buffer; key: Buffer | undefined; headers: Map<Buffer, Buffer> }[] = [];
    // Guarded: a message that never comes ends the stream (and fails below) instead of the runner's timeout.
    const guard = setTimeout(() => void stream.close(), 60_000);
    for await (const message of stream) {
      seen.push({ value: message.value, key: message.key, headers: message.headers });
      if (seen.length >= 2) break;
    }
    clearTimeout(guard);
    await stream.close();
    assert.equal(seen.length, 2, "both messages were produced within 60 s");
    for (const message of seen) {
      assert.equal(message.key?.length ?? 0, 0, "no key, as LAYRA");
      assert.deepEqual(
        [...message.headers].map(([k, v]) => [k.toString(), v.toString()]),
        [["priority", "1"]],
      );
      const value = JSON.parse(message.value.toString()) as Record<string, Record<string, unknown>>;
      assert.deepEqual(Object.keys(value), ["task_id", "username", "knowledge_db_id", "file_meta"]);
      assert.deepEqual(Object.keys(value.file_meta!), ["file_id", "minio_filename", "original_filename", "minio_url"]);
      assert.ok(Object.values(value.file_meta!).every((field) => typeof field === "string"));
      assert.match(String(value.file_meta!.minio_filename), /^ann_.+_[0-9a-f]{24}\.(pdf|png)$/);
    }

    // LAYRA's upload endpoint: the task hash, the original under its key, then json.dumps of the message.
    const taskId = `ann_${crypto.randomUUID()}`;
    const fileId = `ann_${crypto.randomUUID()}`;
    const objectKey = `ann_from layra_${new ObjectId().toHexString()}.png`;
    await taskDb.hset(`task:${taskId}`, {
      status: "processing",
      total: "1",
      processed: "0",
      message: "Initializing file processing...",
    });
    await taskDb.expire(`task:${taskId}`, 3600);
    await s3.putObject(objectKey, samplePng(), "image/png");
    const layraValue =
      `{"task_id": "${taskId}", "username": "ann", "knowledge_db_id": "${knowledgeBaseId}", ` +
      `"file_meta": {"file_id": "${fileId}", "minio_filename": "${objectKey}", "original_filename": "from layra.png", ` +
      `"minio_url": "http://192.168.1.5/minio-file/${encodeURIComponent(objectKey)}?AWSAccessKeyId=x&Signature=y&Expires=4900000000"}}`;
    const workflowValue = JSON.stringify({
      type: "workflow",
      task_id: crypto.randomUUID(),
      username: "ann",
      workflow_data: {},
    });
    await producer.send({
      messages: [
        {
          topic: config.kafka.topic,
          value: Buffer.from(workflowValue),
          headers: new Map([[Buffer.from("priority"), Buffer.from("normal")]]),
        },
        {
          topic: config.kafka.topic,
          value: Buffer.from(layraValue),
          headers: new Map([[Buffer.from("priority"), Buffer.from("1")]]),
        },
      ],
    });
    await waitFor("LAYRA's message to be ingested", async () => (await taskHash(taskId)).status === "completed");
    const doc = await mongo.files.findOne({ file_id: fileId });
    assert.equal(doc?.filename, "from layra.png");
    assert.equal(doc?.knowledge_db_id, knowledgeBaseId);
    assert.deepEqual(
      doc?.images.map((image) => image.page_number),
      [1],
    );
    assert.equal((await taskHash(taskId)).message, "All files processed successfully");

    // The workflow message went to the unhandled topic, unchanged, with its header and its origin.
    const parked = new Consumer({
      groupId: `${config.kafka.groupId}-parked`,
      clientId: "parked",
      bootstrapBrokers: config.kafka.brokers,
    });
    try {
      const parkedStream = await parked.consume({
        topics: [config.kafka.unhandledTopic],
        mode: "earliest",
        autocommit: false,
      });
      let forwarded: { value: string; headers: Record<string, string> } | undefined;
      for await (const message of parkedStream) {
        forwarded = {
          value: message.value.toString(),
          headers: Object.fromEntries([...message.headers].map(([k, v]) => [k.toString(), v.toString()])),
        };
        break;
      }
      await parkedStream.close();
      assert.equal(forwarded?.value, workflowValue);
      assert.equal(forwarded?.headers.priority, "normal");
      assert.match(forwarded?.headers["x-layra-source"] ?? "", new RegExp(`^${config.kafka.topic}/\\d+/\\d+$`));
    } finally {
      // close(true) matches a callback overload typed void; without a callback it returns a promise.
      // eslint-disable-next-line @typescript-eslint/await-thenable
      await parked.close(true);
    }
  } finally {
    await workers();
    // eslint-disable-next-line @typescript-eslint/await-thenable -- as parked.close(true) above
    await inspector.close(true);
    await producer.close();
  }
});

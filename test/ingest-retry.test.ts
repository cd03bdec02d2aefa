// The worker's attempts at one file (INGEST_MAX_ATTEMPTS), on a model server of this file's own that
// is stopped to make an attempt fail: a failure that passes is tried again and the file is ingested
// once; one that lasts ends the file failed after exactly INGEST_MAX_ATTEMPTS attempts, leaving nothing.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Redis } from "ioredis";
import type { LocalStack } from "../dev/stack/stack.js";
import { buildWorker } from "../src/worker-app.js";
import { createLogger } from "../src/observability/logger.js";
import { collectionName } from "../src/stores/milvus.js";
import { mongoCollections } from "../src/stores/mongo.js";
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
  UPLOAD_FILES,
  type UploadTaskResult,
} from "./ingest-helpers.js";

// No patience for the model server inside an attempt: a stopped one fails the attempt at once.
const overrides = ingestOverrides({ MODEL_RETRY_PATIENCE_MS: "0" });
let shared: Awaited<ReturnType<typeof sharedStackEnv>>;
let stack: LocalStack;
let env: Record<string, string>;
let gateway: TestGateway;
let taskDb: Redis;
let token: string;

before(async () => {
  shared = await sharedStackEnv();
  stack = await privateStack(["model"]);
  env = { ...shared.env, MODEL_SERVER_URL: stack.env.MODEL_SERVER_URL };
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

/** A worker on the gateway's stores whose failed attempts at a file are collected, by file id. */
async function startWorker(maxAttempts: number) {
  const failedAttempts: string[] = [];
  const logger = createLogger(
    { logLevel: "info" },
    {
      write: (line: string) => {
        const entry = JSON.parse(line) as { msg: string; fileId?: string };
        if (entry.msg === "file attempt failed") failedAttempts.push(entry.fileId!);
      },
    },
  );
  const worker = buildWorker(
    testConfig(env, {
      ...overrides,
      INGEST_MAX_ATTEMPTS: String(maxAttempts),
      MONGODB_DB: gateway.config.mongo.database,
      MINIO_BUCKET_NAME: gateway.config.s3.bucket,
    }),
    { logger },
  );
  await worker.start();
  return { failedAttempts, stop: () => worker.stop() };
}

async function uploadOne(name: string, pages: number): Promise<UploadTaskResult> {
  const created = await gateway.query<{ createKnowledgeBase: { knowledgeBaseId: string } }>(
    `mutation($name: String!) { createKnowledgeBase(name: $name) { knowledgeBaseId } }`,
    { token, variables: { name } },
  );
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  const pdf = await samplePdf(Array.from({ length: pages }, (_, i) => `${name} page ${i + 1}`));
  const uploaded = await multipartRequest<{ uploadFiles: UploadTaskResult }>(
    gateway,
    token,
    UPLOAD_FILES,
    { knowledgeBaseId: created.data!.createKnowledgeBase.knowledgeBaseId },
    [{ name: `${name}.pdf`, type: "application/pdf", bytes: pdf }],
  );
  assert.equal(uploaded.errors, undefined, JSON.stringify(uploaded.errors));
  return uploaded.data!.uploadFiles;
}

/** What the stores hold of one file: its documents, its Milvus rows' image ids, its page objects (LAYRA's keys name the file). */
async function storedOf(task: UploadTaskResult, name: string) {
  const fileId = task.files[0]!.id;
  const { milvus, s3 } = gateway.app.stores;
  const documents = await mongoCollections(gateway.app.stores.mongo.db).files.find({ file_id: fileId }).toArray();
  const rows = await milvus.client.query({
    collection_name: collectionName(task.knowledgeBaseId),
    filter: `file_id == ${JSON.stringify(fileId)}`,
    output_fields: ["image_id"],
    limit: 16384,
  });
  const pageObjects: string[] = [];
  for await (const item of s3.client.listObjectsV2(s3.bucket, "", true))
    if (String(item.name).startsWith(`ann_${name}_`) && String(item.name).endsWith(".png"))
      pageObjects.push(String(item.name));
  return { documents, rowImageIds: (rows.data as { image_id: string }[]).map((row) => row.image_id), pageObjects };
}

const taskEnded = (taskId: string) => async () => (await taskDb.hget(`task:${taskId}`, "status")) !== "processing";

test("an attempt that fails while the model server is down is tried again, and the file is ingested once", async () => {
  const worker = await startWorker(50);
  try {
    await stack.stopServer("model");
    let task: UploadTaskResult;
    try {
      task = await uploadOne("retried", 3);
      await eventually(
        () => worker.failedAttempts.includes(task.files[0]!.id),
        "an attempt at the file fails",
        120_000,
      );
    } finally {
      await stack.startServer("model");
    }
    await eventually(taskEnded(task.taskId), "the task ends", 180_000);
    const hash = await taskDb.hgetall(`task:${task.taskId}`);
    assert.equal(hash.status, "completed", JSON.stringify(hash));
    assert.equal(hash.processed, "1");
    const stored = await storedOf(task, "retried");
    assert.equal(stored.documents.length, 1, "one files document");
    const imageIds = stored.documents[0]!.images.map((image) => image.images_id);
    assert.equal(imageIds.length, 3);
    // A failed attempt's rows and pages are removed: only the last attempt's are left, once.
    assert.deepEqual(new Set(stored.rowImageIds), new Set(imageIds), "the rows are the document's pages only");
    assert.deepEqual(
      stored.pageObjects.sort(),
      stored.documents[0]!.images.map((image) => image.minio_filename).sort(),
      "one object per page",
    );
  } finally {
    await worker.stop();
  }
});

test("a file whose every attempt fails ends failed after exactly INGEST_MAX_ATTEMPTS attempts, leaving nothing", async () => {
  const worker = await startWorker(2);
  await stack.stopServer("model");
  try {
    const task = await uploadOne("hopeless", 2);
    const fileId = task.files[0]!.id;
    await eventually(taskEnded(task.taskId), "the task ends", 180_000);
    const hash = await taskDb.hgetall(`task:${task.taskId}`);
    assert.equal(hash.status, "failed", JSON.stringify(hash));
    assert.deepEqual(JSON.parse(hash.failed_files ?? "[]"), ["hopeless.pdf"]);
    // The user reads which part failed, in the worker's words: never the model server's address.
    assert.match(hash.message ?? "", /hopeless\.pdf: model is unavailable$/, hash.message);
    assert.doesNotMatch(hash.message ?? "", /\d+\.\d+\.\d+\.\d+|localhost|ECONN/, hash.message);
    assert.equal(
      worker.failedAttempts.filter((id) => id === fileId).length,
      2,
      "two attempts, as INGEST_MAX_ATTEMPTS says",
    );
    const stored = await storedOf(task, "hopeless");
    assert.deepEqual(stored, { documents: [], rowImageIds: [], pageObjects: [] });
    const ref = await mongoCollections(gateway.app.stores.mongo.db).knowledgeBases.findOne({
      knowledge_base_id: task.knowledgeBaseId,
    });
    assert.deepEqual(ref?.files, [], "no ref in the knowledge base");
    const originals: string[] = [];
    for await (const item of gateway.app.stores.s3.client.listObjectsV2(gateway.app.stores.s3.bucket, "", true))
      originals.push(String(item.name));
    assert.ok(!originals.some((key) => key.startsWith("ann_hopeless_")), `no original left: ${originals.join(", ")}`);
  } finally {
    await stack.startServer("model");
    await worker.stop();
  }
});

// Store outages in the middle of an upload and of a file's ingestion, on a Mongo, an S3, a Milvus and a
// Redis of this file's own (Kafka and the model server are shared). A multipart request is held open on
// the wire while a store stops: the upload fails with a typed error naming that store and nothing of it
// is left anywhere; once the store is back the same upload goes through. Milvus or Mongo stopping in the
// middle of a file does not lose or duplicate it: the worker spends none of the file's attempts on the
// outage, handles the message again once the store is back, and ingests the file once.
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, test } from "node:test";
import type { Redis } from "ioredis";
import type { LocalStack } from "../dev/stack/stack.js";
import { createLogger } from "../src/observability/logger.js";
import { lockKey } from "../src/stores/lock.js";
import { collectionName } from "../src/stores/milvus.js";
import { mongoCollections } from "../src/stores/mongo.js";
import { buildWorker } from "../src/worker-app.js";
import {
  eventually,
  privateStack,
  redisClient,
  sharedStackEnv,
  startGateway,
  testConfig,
  uniqueName,
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

const overrides = ingestOverrides({ EMBEDDING_BATCH_PAGES: "1" });
const ann = uniqueName("ann");
let shared: Awaited<ReturnType<typeof sharedStackEnv>>;
let stack: LocalStack;
let env: Record<string, string>;
let gateway: TestGateway;
let taskDb: Redis;
let lockDb: Redis;
let token: string;

before(async () => {
  shared = await sharedStackEnv();
  stack = await privateStack(["mongo", "s3", "milvus", "redis"]);
  const { MONGODB_URL, MILVUS_URI, MINIO_URL, MINIO_PUBLIC_URL, MINIO_ACCESS_KEY, MINIO_SECRET_KEY, REDIS_URL } =
    stack.env;
  env = {
    ...shared.env,
    MONGODB_URL,
    MILVUS_URI,
    MINIO_URL,
    MINIO_PUBLIC_URL,
    MINIO_ACCESS_KEY,
    MINIO_SECRET_KEY,
    REDIS_URL,
  };
  gateway = await startGateway(env, overrides);
  taskDb = redisClient(gateway.config, "task");
  lockDb = redisClient(gateway.config, "lock");
  await createTopic(gateway.config, 1);
  token = await gateway.token(ann);
});
after(async () => {
  taskDb?.disconnect();
  lockDb?.disconnect();
  await gateway?.close();
  await stack?.close();
  await shared?.close();
});

async function createKnowledgeBase(name: string): Promise<string> {
  const created = await gateway.query<{ createKnowledgeBase: { knowledgeBaseId: string } }>(
    `mutation($name: String!) { createKnowledgeBase(name: $name) { knowledgeBaseId } }`,
    { token, variables: { name } },
  );
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  return created.data!.createKnowledgeBase.knowledgeBaseId;
}

interface UploadAnswer {
  errors?: { message: string; extensions?: { code?: string; store?: string } }[];
  data?: { uploadFiles: UploadTaskResult } | null;
}

/**
 * An uploadFiles request whose body is sent in two halves: `between` runs after the first half is on
 * the wire and before the rest, so the store it stops is down while the upload is in flight.
 */
async function uploadWith(
  knowledgeBaseId: string,
  name: string,
  bytes: Buffer,
  between: () => Promise<void>,
): Promise<UploadAnswer> {
  const form = new FormData();
  form.append("operations", JSON.stringify({ query: UPLOAD_FILES, variables: { knowledgeBaseId, files: [null] } }));
  form.append("map", JSON.stringify({ 0: ["variables.files.0"] }));
  form.append("0", new Blob([new Uint8Array(bytes)], { type: "application/pdf" }), name);
  // The encoded form, so its halves can be written apart.
  const encoded = new Request("http://localhost/", { method: "POST", body: form });
  const body = Buffer.from(await encoded.arrayBuffer());
  const half = Math.floor(body.length / 2);
  return new Promise<UploadAnswer>((resolve, reject) => {
    const sent = request(
      `${gateway.url}/graphql`,
      {
        method: "POST",
        headers: {
          authorization: `Bearer ${token}`,
          "x-graphql-csrf": "1",
          "content-type": encoded.headers.get("content-type")!,
          "content-length": body.length,
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString()) as UploadAnswer));
        response.on("error", reject);
      },
    );
    sent.on("error", reject);
    sent.write(body.subarray(0, half), () => {
      between().then(
        () => sent.end(body.subarray(half)),
        (error: unknown) => {
          sent.destroy();
          reject(error);
        },
      );
    });
  });
}

/** Everything of `<base>.pdf` an upload could have left: objects under its key prefix, task keys, refs and documents. */
async function leftOf(knowledgeBaseId: string, base: string) {
  const { s3 } = gateway.app.stores;
  const objects: string[] = [];
  for await (const item of s3.client.listObjectsV2(s3.bucket, `${ann}_${base}_`, true)) objects.push(String(item.name));
  const mongo = mongoCollections(gateway.app.stores.mongo.db);
  const kb = await mongo.knowledgeBases.findOne({ knowledge_base_id: knowledgeBaseId });
  return {
    objects,
    taskKeys: await taskDb.keys(`task:${ann}_*`),
    refs: kb?.files.length,
    documents: await mongo.files.countDocuments({ filename: `${base}.pdf` }),
  };
}

/** Another upload of the same file once the store is back: it goes through (the outage left no trace that blocks it). */
async function uploadsAgain(knowledgeBaseId: string, base: string, bytes: Buffer) {
  let answer: UploadAnswer = {};
  await eventually(
    async () => {
      answer = await multipartRequest<{ uploadFiles: UploadTaskResult }>(
        gateway,
        token,
        UPLOAD_FILES,
        { knowledgeBaseId },
        [{ name: `${base}.pdf`, type: "application/pdf", bytes }],
      );
      return answer.errors === undefined;
    },
    `an upload of ${base}.pdf goes through once the store is back`,
    60_000,
  ).catch((error: Error) => assert.fail(`${error.message}: ${JSON.stringify(answer.errors)}`));
  // Under the prefix the checks above read. (The workers of the last tests ingest it; close() removes it.)
  assert.equal((await leftOf(knowledgeBaseId, base)).objects.length, 1, "its original is stored");
}

/**
 * An upload of `<base>.pdf` while `server` stops halfway through its body: it answers UPSTREAM_UNAVAILABLE
 * naming that store and no task. The base, the file and what was there before (`leftOf`) are returned
 * for each test's own checks once the store is back.
 */
async function uploadWhileStopped(server: "s3" | "mongo" | "redis", base: string) {
  const knowledgeBaseId = await createKnowledgeBase(`${server} outage`);
  const pdf = await samplePdf([`${server} outage page`]);
  const before = await leftOf(knowledgeBaseId, base);
  let answer: UploadAnswer;
  try {
    answer = await uploadWith(knowledgeBaseId, `${base}.pdf`, pdf, () => stack.stopServer(server));
  } finally {
    await stack.startServer(server);
  }
  assert.equal(answer.errors?.[0]?.extensions?.code, "UPSTREAM_UNAVAILABLE", JSON.stringify(answer));
  assert.equal(answer.errors[0].extensions.store, server);
  assert.equal(answer.data?.uploadFiles ?? null, null);
  return { knowledgeBaseId, pdf, before };
}

test("S3 stopped while a multipart upload is on the wire: UPSTREAM_UNAVAILABLE naming s3, nothing left", async () => {
  const { knowledgeBaseId, pdf, before } = await uploadWhileStopped("s3", "s3down");
  assert.deepEqual(await leftOf(knowledgeBaseId, "s3down"), before, "nothing written");
  await uploadsAgain(knowledgeBaseId, "s3down", pdf);
});

test("Mongo stopped while a multipart upload is on the wire: UPSTREAM_UNAVAILABLE naming mongo (not NOT_FOUND), nothing left", async () => {
  const { knowledgeBaseId, pdf, before } = await uploadWhileStopped("mongo", "mongodown");
  await eventually(
    async () =>
      (await mongoCollections(gateway.app.stores.mongo.db)
        .knowledgeBases.countDocuments({})
        .catch(() => -1)) >= 0,
    "the gateway reads Mongo again",
    60_000,
  );
  assert.deepEqual(await leftOf(knowledgeBaseId, "mongodown"), before, "nothing written");
  await uploadsAgain(knowledgeBaseId, "mongodown", pdf);
});

/**
 * A 6-page file whose ingestion meets `server` stopped after its first page: a write to it fails, the
 * worker handles the message again once the store is back (no attempt of the file spent: INGEST_MAX_ATTEMPTS
 * is 1 here, so one spent attempt would fail the file), and the file is ingested once.
 */
async function ingestsOnceThroughOutage(server: "milvus" | "mongo", base: string): Promise<void> {
  // What the worker logs of failed writes: a failed attempt names its file; a message handled again names none.
  const failures: { msg: string; fileId?: string }[] = [];
  // Every line, for the failure message of a test that fails.
  const lines: string[] = [];
  const logger = createLogger(
    { logLevel: "info" },
    {
      write: (line: string) => {
        lines.push(line.trim());
        const entry = JSON.parse(line) as { msg: string; fileId?: string };
        if (/failed/.test(entry.msg)) failures.push(entry);
      },
    },
  );
  const workerLog = () => `\nthe worker's log:\n${lines.slice(-40).join("\n")}`;
  const worker = buildWorker(
    testConfig(env, {
      ...overrides,
      INGEST_MAX_ATTEMPTS: "1",
      MONGODB_DB: gateway.config.mongo.database,
      MINIO_BUCKET_NAME: gateway.config.s3.bucket,
    }),
    { logger },
  );
  await worker.start();
  try {
    const knowledgeBaseId = await createKnowledgeBase(`${server} outage mid-file`);
    const pdf = await samplePdf(Array.from({ length: 6 }, (_, i) => `${server} outage page ${i + 1}`));
    const uploaded = await multipartRequest<{ uploadFiles: UploadTaskResult }>(
      gateway,
      token,
      UPLOAD_FILES,
      { knowledgeBaseId },
      [{ name: `${base}.pdf`, type: "application/pdf", bytes: pdf }],
    );
    assert.equal(uploaded.errors, undefined, JSON.stringify(uploaded.errors));
    const task = uploaded.data!.uploadFiles;
    const taskHash = () => taskDb.hgetall(`task:${task.taskId}`);
    await eventually(
      async () => Number((await taskHash()).file_pages_done ?? 0) >= 1,
      "the first page is ingested",
      120_000,
    );
    // The worker writes each batch holding the base's lock: holding it here (as a delete would) keeps the
    // worker at its next batch until the store is down, however fast the rest of the file would go.
    const baseLock = lockKey("knowledge_base", knowledgeBaseId);
    await eventually(async () => (await lockDb.set(baseLock, "outage-test", "PX", 120_000, "NX")) === "OK", "the lock");
    const held = await taskHash();
    assert.ok(Number(held.file_pages_done) < 6, `the file was not done before the lock: ${JSON.stringify(held)}`);
    await stack.stopServer(server);
    await lockDb.del(baseLock);
    try {
      // The outage reaches the file: a write fails and the whole message is handled again.
      await eventually(
        () => failures.some((entry) => entry.msg.startsWith("message handling failed")),
        `a ${server} write of the file fails`,
        120_000,
      ).catch(async (error: Error) =>
        assert.fail(`${error.message}; task ${JSON.stringify(await taskHash())}${workerLog()}`),
      );
    } finally {
      await stack.startServer(server);
    }
    await eventually(async () => (await taskHash()).status !== "processing", "the task ends", 180_000);
    const hash = await taskHash();
    assert.equal(hash.status, "completed", JSON.stringify(hash));
    assert.equal(hash.processed, "1");
    const fileId = task.files[0]!.id;
    assert.deepEqual(
      failures.filter((entry) => entry.msg === "file attempt failed" && entry.fileId === fileId),
      [],
      "no attempt of the file was spent on the outage",
    );
    const mongo = mongoCollections(gateway.app.stores.mongo.db);
    const documents = await mongo.files.find({ file_id: fileId }).toArray();
    assert.equal(documents.length, 1, "one files document");
    const images = documents[0]!.images;
    assert.equal(images.length, 6);
    const kb = await mongo.knowledgeBases.findOne({ knowledge_base_id: knowledgeBaseId });
    assert.equal(kb!.files.filter((ref) => ref.file_id === fileId).length, 1, "one ref in the knowledge base");
    // A restarted milvus-lite has the collection unloaded (a query then reads nothing): load it as a search does.
    assert.ok(await gateway.app.stores.milvus.readyForSearch(knowledgeBaseId));
    // The rows the interrupted attempt wrote before the outage are gone: each page's rows are there once.
    const rows = await gateway.app.stores.milvus.client.query({
      collection_name: collectionName(knowledgeBaseId),
      filter: `file_id == ${JSON.stringify(fileId)}`,
      output_fields: ["image_id", "page_number"],
      limit: 16384,
    });
    const pageOf = new Map<string, number>();
    // Int64 fields come back as strings.
    for (const row of rows.data as { image_id: string; page_number: string }[]) {
      const page = Number(row.page_number);
      assert.ok(!pageOf.has(row.image_id) || pageOf.get(row.image_id) === page, "an image id names one page");
      pageOf.set(row.image_id, page);
    }
    assert.deepEqual(
      new Set(pageOf.keys()),
      new Set(images.map((image) => image.images_id)),
      "the rows are the document's pages only",
    );
    assert.deepEqual([...pageOf.values()].sort(), [0, 1, 2, 3, 4, 5], "one image id per page");
  } finally {
    await worker.stop();
  }
}

test("Milvus stopped in the middle of a file: the worker handles it again once Milvus is back, and the file is ingested once", () =>
  ingestsOnceThroughOutage("milvus", "milvusdown"));

test("Mongo stopped in the middle of a file: the worker handles it again once Mongo is back, and the file is ingested once", () =>
  ingestsOnceThroughOutage("mongo", "mongodown-midfile"));

test("Redis stopped while a multipart upload is on the wire: UPSTREAM_UNAVAILABLE naming redis, no original or ref left", async () => {
  const { knowledgeBaseId, pdf, before: withTaskKeys } = await uploadWhileStopped("redis", "redisdown");
  const { taskKeys, ...before } = withTaskKeys;
  await eventually(async () => (await taskDb.ping().catch(() => "")) === "PONG", "Redis answers again", 60_000);
  // This Redis keeps nothing on disk: it restarts empty, without the earlier task keys and the caller's token.
  const { taskKeys: taskKeysAfter, ...after } = await leftOf(knowledgeBaseId, "redisdown");
  assert.deepEqual(after, before, "no original, ref or document written");
  assert.ok(taskKeys.length > 0 && taskKeysAfter.length === 0, JSON.stringify({ taskKeys, taskKeysAfter }));
  token = await gateway.token(ann);
  await uploadsAgain(knowledgeBaseId, "redisdown", pdf);
});

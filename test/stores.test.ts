// Each store client against its real local server.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Redis } from "ioredis";
import type { FileDoc } from "../src/stores/documents.js";
import { createStores, closeStores, type Stores } from "../src/stores/index.js";
import { layraId, storedUrl } from "../dev/layra-writer.js";
import { sharedStackEnv, testConfig } from "./helpers.js";
import { mongoCollections } from "../src/stores/mongo.js";

let stack: Awaited<ReturnType<typeof sharedStackEnv>>;
let stores: Stores;

before(async () => {
  stack = await sharedStackEnv();
  stores = createStores(testConfig(stack.env));
  await stores.s3.ensureBucket();
});
after(async () => {
  await stores.mongo.db.dropDatabase();
  await closeStores(stores);
  await stack.close();
});

test("mongo: a LAYRA-shaped knowledge base and file round-trip, and a unique index rejects a duplicate", async () => {
  const { knowledgeBases, files } = mongoCollections(stores.mongo.db);
  await files.createIndex({ file_id: 1 }, { unique: true, name: "unique_file_id" });
  const kbId = layraId("alice");
  const created = new Date(Date.UTC(2025, 8, 20, 13, 34, 46, 123));
  const file: FileDoc = {
    file_id: layraId("alice"),
    filename: "a.pdf",
    username: "alice",
    minio_filename: "alice_a_0.pdf",
    minio_url: storedUrl("alice_a_0.pdf"),
    knowledge_db_id: kbId,
    images: [
      {
        images_id: layraId("alice"),
        minio_filename: "alice_a_1.png",
        minio_url: storedUrl("alice_a_1.png"),
        page_number: 1,
      },
    ],
    created_at: created,
    last_modify_at: created,
    is_delete: false,
  };
  await files.insertOne({ ...file });
  await knowledgeBases.insertOne({
    knowledge_base_id: kbId,
    knowledge_base_name: "kb",
    username: "alice",
    files: [],
    used_chat: [],
    created_at: created,
    last_modify_at: created,
    is_delete: false,
  });
  const read = await files.findOne({ file_id: file.file_id }, { projection: { _id: 0 } });
  assert.deepEqual(read, file);
  assert.ok(read.created_at instanceof Date, "timestamps come back as BSON Dates");
  await assert.rejects(files.insertOne({ ...file }), (error: { code?: number }) => error.code === 11000);
});

test("redis: an HSET on DB 1 task:* reaches a keyspace-notification subscriber", async () => {
  const subscriber = stores.redis.connect(0);
  const events: string[] = [];
  const taskDb = 1;
  await subscriber.psubscribe(`__keyspace@${taskDb}__:task:*`);
  subscriber.on("pmessage", (_pattern, channel, event) => events.push(`${channel} ${event}`));
  const taskId = layraId("alice");
  await stores.redis.task.hset(`task:${taskId}`, {
    status: "processing",
    total: "3",
    processed: "0",
    message: "Initializing file processing...",
  });
  const deadline = Date.now() + 2000;
  while (events.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(events, [`__keyspace@${taskDb}__:task:${taskId} hset`]);
  await subscriber.quit();
  await stores.redis.task.del(`task:${taskId}`);
});

test("s3: a presigned GET returns the object over plain HTTP and a tampered signature is refused", async () => {
  const key = "alice_page_0123456789abcdef01234567.png";
  await stores.s3.client.putObject(stores.s3.bucket, key, Buffer.from("png bytes"), 9, { "Content-Type": "image/png" });
  const url = stores.s3.presignGet(key);
  const ok = await fetch(url);
  assert.equal(ok.status, 200);
  assert.equal(await ok.text(), "png bytes");
  const signature = new URL(url).searchParams.get("X-Amz-Signature")!;
  const tampered = url.replace(
    signature,
    signature.replace(/^./, (c) => (c === "0" ? "1" : "0")),
  );
  assert.equal((await fetch(tampered)).status, 403);
});

test("model server: /embed_text answers LAYRA's shape with unit 128-d vectors, deterministically", async () => {
  const first = await stores.model.embedText("Where is the router reset button?");
  assert.equal(first.length, 6, "one token vector per word");
  for (const vector of first) {
    assert.equal(vector.length, 128);
    assert.ok(Math.abs(Math.hypot(...vector) - 1) < 1e-9);
  }
  assert.deepEqual(await stores.model.embedText("Where is the router reset button?"), first);
  const raw = await fetch(`${testConfig(stack.env).model.url}/embed_text`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ queries: ["a b", "c"] }),
  });
  const body = (await raw.json()) as { embeddings: number[][][] };
  assert.deepEqual(
    body.embeddings.map((e) => e.length),
    [2, 1],
  );
});

test("redis: the four logical databases are separate", async () => {
  const key = `probe:${layraId("x")}`;
  await stores.redis.cache.set(key, "cache");
  assert.equal(await stores.redis.token.get(key), null);
  assert.equal(await stores.redis.cache.get(key), "cache");
  await stores.redis.cache.del(key);
  assert.ok(stores.redis.task instanceof Redis);
});

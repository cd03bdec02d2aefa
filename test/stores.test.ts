// Each store client against its real local server.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Redis } from "ioredis";
import type { Config } from "../src/config.js";
import type { FileDoc } from "../src/stores/documents.js";
import { closeStores, type Stores } from "../src/stores/index.js";
import type { RedisPurpose } from "../src/stores/redis.js";
import { layraId, storedUrl } from "../dev/layra-writer.js";
import { connectedStores, eventually, redisClient, sharedStackEnv, testConfig } from "./helpers.js";
import { mongoCollections } from "../src/stores/mongo.js";

let stack: Awaited<ReturnType<typeof sharedStackEnv>>;
let config: Config;
let stores: Stores;
/** The task database, written the way LAYRA writes it. */
let task: Redis;

before(async () => {
  stack = await sharedStackEnv();
  config = testConfig(stack.env);
  stores = await connectedStores(config);
  task = redisClient(config, "task");
  await stores.s3.ensureBucket();
});
after(async () => {
  await stores.mongo.db.dropDatabase();
  await closeStores(stores);
  task.disconnect();
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
  const subscriber = redisClient(config, "task");
  const events: string[] = [];
  const taskDb = config.redis.db.task;
  await subscriber.psubscribe(`__keyspace@${taskDb}__:task:*`);
  subscriber.on("pmessage", (_pattern, channel, event) => events.push(`${channel} ${event}`));
  const taskId = layraId("alice");
  await task.hset(`task:${taskId}`, {
    status: "processing",
    total: "3",
    processed: "0",
    message: "Initializing file processing...",
  });
  await eventually(() => events.length > 0, "a keyspace notification for the HSET");
  assert.deepEqual(events, [`__keyspace@${taskDb}__:task:${taskId} hset`]);
  await subscriber.quit();
  await task.del(`task:${taskId}`);
});

test("redis: progress keys are read in one batch, a key of another type reads as missing, and keyspace events name the key", async () => {
  const { progressKeys } = stores.redis;
  const id = layraId("alice");
  const hash = `task:${id}`;
  const stream = `workflow:events:${id}`;
  const otherType = `workflow:${id}:state`;
  await task.hset(hash, { status: "processing", processed: "0" });
  await task.pexpire(hash, 60_000);
  const first = (await task.xadd(stream, "*", "type", "node"))!;
  const second = (await task.xadd(stream, "*", "type", "workflow", "status", "completed"))!;
  await task.set(otherType, "a string");
  const states = await progressKeys.readBatch([
    { kind: "hash", key: hash, withTtl: true },
    { kind: "hash", key: `task:${layraId("alice")}`, withTtl: false },
    { kind: "hash", key: otherType, withTtl: false },
    { kind: "stream", key: stream, afterId: first },
    { kind: "stream", key: otherType, afterId: null },
  ]);
  const [read, ...rest] = states;
  assert.ok(read?.kind === "hash" && read.ttlMs > 0 && read.ttlMs <= 60_000, JSON.stringify(read));
  assert.deepEqual(read.fields, { status: "processing", processed: "0" });
  assert.deepEqual(rest, [
    { kind: "hash", fields: null, ttlMs: -1 },
    { kind: "hash", fields: null, ttlMs: -1 },
    { kind: "stream", entries: [{ id: second, fields: { type: "workflow", status: "completed" } }] },
    { kind: "stream", entries: [] },
  ]);
  assert.deepEqual(
    (await progressKeys.readStream(stream)).map((entry) => entry.id),
    [first, second],
  );
  assert.deepEqual(await progressKeys.readStream(otherType), []);

  assert.equal(await progressKeys.ensureKeyspaceNotifications(), "enabled");
  const events: string[] = [];
  const subscription = progressKeys.subscribeKeyspace(["task:*"], {
    onEvent: (key, event) => events.push(`${key} ${event}`),
    onReady: () => undefined,
    onClose: () => undefined,
  });
  await subscription.subscribe();
  await task.hset(hash, { status: "completed" });
  await eventually(() => events.length > 0, "a keyspace event for the HSET");
  assert.deepEqual(events, [`${hash} hset`]);
  await subscription.close();
  await task.del(hash, stream, otherType);
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

test("redis: each repository writes to its own logical database", async () => {
  const databases = (Object.keys(config.redis.db) as RedisPurpose[]).map(
    (purpose) => [purpose, redisClient(config, purpose)] as const,
  );
  /** The databases that hold `key`. */
  const holding = async (key: string) => {
    const found: string[] = [];
    for (const [purpose, redis] of databases) if ((await redis.exists(key)) === 1) found.push(purpose);
    return found;
  };
  try {
    const jwt = layraId("probe");
    await stores.redis.tokens.register(jwt, "probe", 60);
    assert.deepEqual(await holding(`token:${jwt}`), ["token"]);
    await stores.redis.tokens.revoke(jwt);
    const taskId = layraId("probe");
    await stores.redis.tasks.init(taskId, 1, "probe", 60);
    assert.deepEqual(await holding(`task:${taskId}`), ["task"]);
    await stores.redis.tasks.delete(taskId);
    const lock = `lock:probe:${layraId("x")}`;
    const owner = await stores.redis.locks.acquire(lock, 60_000);
    assert.deepEqual(await holding(lock), ["lock"]);
    await stores.redis.locks.release(lock, owner!);
    const counter = `ratelimit:${layraId("probe")}`;
    await stores.redis.rateLimits.hit(counter, 60_000);
    assert.deepEqual(await holding(counter), ["cache"]);
  } finally {
    for (const [, redis] of databases) redis.disconnect();
  }
  assert.equal((await stores.redis.health()).up, true, "the store's own connections answer");
});

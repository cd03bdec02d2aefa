// A test gateway's close() leaves nothing of its own on the shared servers, so no file meets another's
// leftovers: its database, its knowledge bases' Milvus collections, its bucket, its tokens, its counters.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { closeStores, createStores, type Stores } from "../src/stores/index.js";
import { collectionName } from "../src/stores/milvus.js";
import { mongoCollections } from "../src/stores/mongo.js";
import { redisClient, sharedStackEnv, startGateway, uniqueName, type TestGateway } from "./helpers.js";

let shared: Awaited<ReturnType<typeof sharedStackEnv>>;
let observer: Stores;

before(async () => {
  shared = await sharedStackEnv();
});
after(async () => {
  if (observer) await closeStores(observer);
  await shared.close();
});

test("close() removes the database, every knowledge base's collection, the bucket, the tokens and the rate-limit counters", async () => {
  const gateway = await startGateway(shared.env);
  const user = uniqueName("ann");
  const token = await gateway.token(user);
  const ids: string[] = [];
  for (const name of ["kept", "archived"]) {
    const created = await gateway.query<{ createKnowledgeBase: { knowledgeBaseId: string } }>(
      `mutation($name: String!) { createKnowledgeBase(name: $name) { knowledgeBaseId } }`,
      { token, variables: { name } },
    );
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
    ids.push(created.data!.createKnowledgeBase.knowledgeBaseId);
  }
  const { config } = gateway;
  await gateway.app.stores.s3.putObject(`${user}_note_0.png`, Buffer.from("png"), "image/png");
  const tokens = redisClient(config, "token");
  const cache = redisClient(config, "cache");
  observer = createStores(config);
  const collections = async () =>
    (await observer.milvus.client.listCollections()).data
      .map((c) => c.name)
      .filter((name) => ids.map(collectionName).includes(name));
  const counters = () => cache.keys(`ratelimit:${config.rateLimit.namespace}:*`);
  let open = true;
  try {
    assert.equal((await collections()).length, 2);
    assert.equal(await tokens.exists(`token:${token}`), 1);
    assert.ok((await counters()).length > 0, "the queries were counted");

    open = false;
    await gateway.close();

    assert.deepEqual(await collections(), []);
    assert.equal(await observer.s3.client.bucketExists(config.s3.bucket), false, "the bucket is gone");
    const databases = await observer.mongo.db.admin().listDatabases({ nameOnly: true });
    assert.ok(!databases.databases.some((db) => db.name === config.mongo.database), "the database is gone");
    assert.equal(await tokens.exists(`token:${token}`), 0, "the token is revoked");
    assert.deepEqual(await counters(), []);
  } finally {
    if (open) await gateway.close();
    tokens.disconnect();
    cache.disconnect();
  }
});

test("a gateway on another's database and bucket: closing it leaves them to the other, and the last to stop removes them", async () => {
  const first = await startGateway(shared.env);
  const { config } = first;
  const second = await startGateway(shared.env, {
    MONGODB_DB: config.mongo.database,
    MINIO_BUCKET_NAME: config.s3.bucket,
  });
  const watcher = createStores(config);
  let running = [first, second];
  const end = async (gateway: TestGateway, how: "close" | "stop") => {
    running = running.filter((other) => other !== gateway);
    await (how === "close" ? gateway.close() : gateway.app.stop());
  };
  try {
    const token = await first.token(uniqueName("ann"));
    const created = await first.query<{ createKnowledgeBase: { knowledgeBaseId: string } }>(
      `mutation { createKnowledgeBase(name: "shared") { knowledgeBaseId } }`,
      { token },
    );
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
    const id = created.data!.createKnowledgeBase.knowledgeBaseId;
    const stored = async () => ({
      bucket: await watcher.s3.client.bucketExists(config.s3.bucket),
      knowledgeBases: await mongoCollections(watcher.mongo.db).knowledgeBases.countDocuments({ knowledge_base_id: id }),
      collection: Boolean((await watcher.milvus.client.hasCollection({ collection_name: collectionName(id) })).value),
    });
    await end(second, "close");
    assert.deepEqual(await stored(), { bucket: true, knowledgeBases: 1, collection: true }, "still the first's");
    // Stopped without close(), the last gateway on them still removes them: the second was closed.
    await end(first, "stop");
    assert.deepEqual(await stored(), { bucket: false, knowledgeBases: 0, collection: false }, "all gone");
  } finally {
    // A failed check leaves no gateway running: the file would never end.
    await Promise.all(running.map((gateway) => gateway.close()));
    await closeStores(watcher);
  }
});

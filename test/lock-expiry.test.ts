// LOCK_TTL_MS, the lifetime of a knowledge base's lock (src/stores/lock.ts): a lock its holder left
// behind (a crashed delete) turns others away with CONFLICT until it expires, then they go through; a
// holder still working renews it past LOCK_TTL_MS; one whose lock expired never releases its successor's.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Redis } from "ioredis";
import { lockKey } from "../src/stores/lock.js";
import { collectionName } from "../src/stores/milvus.js";
import { mongoCollections } from "../src/stores/mongo.js";
import { eventually, gatewayForFile, redisClient } from "./helpers.js";

const LOCK_TTL_MS = 1_000;
const state = gatewayForFile({ LOCK_TTL_MS: String(LOCK_TTL_MS) });
let token: string;
let lockDb: Redis;

before(async () => {
  const gateway = await state.ready;
  token = await gateway.token("ann");
  lockDb = redisClient(gateway.config, "lock");
});
after(() => lockDb?.disconnect());

async function newKnowledgeBase(): Promise<string> {
  const created = await state.gateway.query<{ createKnowledgeBase: { knowledgeBaseId: string } }>(
    `mutation { createKnowledgeBase(name: "locked") { knowledgeBaseId } }`,
    { token },
  );
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  return created.data!.createKnowledgeBase.knowledgeBaseId;
}

const deleteKnowledgeBase = (id: string) =>
  state.gateway.query(`mutation($id: String!) { deleteKnowledgeBase(knowledgeBaseId: $id) }`, {
    variables: { id },
    token,
  });

/** Resolves once `ms` have passed: the lifetime a test waits out is the behaviour it checks. */
const lifetimesPass = (ms: number) => {
  const until = Date.now() + ms;
  return eventually(() => Date.now() > until, `${ms} ms pass`, ms + 30_000);
};

test("a lock a crashed delete left behind answers CONFLICT and changes nothing until LOCK_TTL_MS ends it", async () => {
  const id = await newKnowledgeBase();
  // What a delete that crashed while holding the lock leaves: the key, with LOCK_TTL_MS to live, never renewed.
  await lockDb.set(lockKey("knowledge_base", id), "crashed-holder", "PX", LOCK_TTL_MS);
  const refused = await deleteKnowledgeBase(id);
  assert.equal(refused.errors?.[0]?.extensions?.code, "CONFLICT", JSON.stringify(refused));
  const kbs = mongoCollections(state.gateway.app.stores.mongo.db).knowledgeBases;
  assert.equal(await kbs.countDocuments({ knowledge_base_id: id }), 1, "the base is untouched");
  assert.ok(
    (
      await state.gateway.app.stores.milvus.client.hasCollection({
        collection_name: collectionName(id),
      })
    ).value,
    "its collection is untouched",
  );
  await eventually(async () => (await deleteKnowledgeBase(id)).errors === undefined, "the delete goes through", 30_000);
  assert.equal(await kbs.countDocuments({ knowledge_base_id: id }), 0);
});

test("a holder still working keeps its lock past LOCK_TTL_MS: others meet CONFLICT for as long as it works", async () => {
  const { locks } = state.gateway.app.stores.redis;
  let finish!: () => void;
  const working = new Promise<void>((resolve) => (finish = resolve));
  const held = locks.hold("knowledge_base", ["slow"], () => working);
  await eventually(async () => (await lockDb.exists(lockKey("knowledge_base", "slow"))) === 1, "the lock is taken");
  await lifetimesPass(3 * LOCK_TTL_MS);
  await assert.rejects(
    locks.hold("knowledge_base", ["slow"], async () => "taken over"),
    (error: { extensions?: { code?: string } }) => error.extensions?.code === "CONFLICT",
  );
  finish();
  await held;
  assert.equal(await lockDb.exists(lockKey("knowledge_base", "slow")), 0, "released when the work ends");
});

test("a holder whose lock expired mid-work does not release the lock its successor took", async () => {
  const { locks } = state.gateway.app.stores.redis;
  const key = lockKey("knowledge_base", "stalled");
  let finishFirst!: () => void;
  let finishSecond!: () => void;
  const first = locks.hold(
    "knowledge_base",
    ["stalled"],
    () => new Promise<void>((resolve) => (finishFirst = resolve)),
  );
  await eventually(async () => (await lockDb.exists(key)) === 1, "the first holder has the lock");
  // The first holder's lock ends while it works (its renewals did not reach Redis in time).
  await lockDb.del(key);
  const second = locks.hold(
    "knowledge_base",
    ["stalled"],
    () => new Promise<void>((resolve) => (finishSecond = resolve)),
  );
  await eventually(async () => (await lockDb.exists(key)) === 1, "the second holder has the lock");
  const successor = await lockDb.get(key);
  finishFirst();
  await first;
  assert.equal(await lockDb.get(key), successor, "the first holder's release left its successor's lock");
  await lifetimesPass(2 * LOCK_TTL_MS);
  assert.equal(await lockDb.get(key), successor, "the successor keeps it, renewing it past LOCK_TTL_MS");
  await assert.rejects(
    locks.hold("knowledge_base", ["stalled"], async () => undefined),
    (error: { extensions?: { code?: string } }) => error.extensions?.code === "CONFLICT",
  );
  finishSecond();
  await second;
  assert.equal(await lockDb.exists(key), 0);
});

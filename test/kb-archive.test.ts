// Backup of one knowledge base and its restore into an empty deployment (other Mongo, Milvus and
// S3 servers) bring back the same documents, objects, vectors and search answers.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createReadStream, createWriteStream } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { backupKnowledgeBase, restoreKnowledgeBase } from "../src/ops/kb-archive.js";
import { closeStores, type Stores } from "../src/stores/index.js";
import { collectionName } from "../src/stores/milvus.js";
import { LayraWriter } from "../dev/layra-writer.js";
import type { Config } from "../src/config.js";
import type { RedisPurpose } from "../src/stores/redis.js";
import {
  connectedStores,
  privateStack,
  redisClient,
  sharedStackEnv,
  startGateway,
  testConfig,
  uniqueName,
} from "./helpers.js";
import type { LocalStack } from "../dev/stack/stack.js";
import { mongoCollections } from "../src/stores/mongo.js";
import { knowledgeBaseTraces, NOTHING_LEFT } from "./fixtures/traces.js";

let shared: Awaited<ReturnType<typeof sharedStackEnv>>;
let target: LocalStack;
let source: Stores;
let restored: Stores;
let sourceEnv: Record<string, string>;
let restoredEnv: Record<string, string>;
let folder: string;

before(async () => {
  shared = await sharedStackEnv();
  target = await privateStack(["mongo", "milvus", "s3"]);
  // Each deployment keeps its database and bucket names, so gateways can be pointed at either.
  const names = () => ({ MONGODB_DB: uniqueName("t_"), MINIO_BUCKET_NAME: uniqueName("t-") });
  sourceEnv = { ...shared.env, ...names() };
  restoredEnv = {
    ...shared.env,
    ...target.env,
    REDIS_URL: shared.env.REDIS_URL!,
    MODEL_SERVER_URL: shared.env.MODEL_SERVER_URL!,
    ...names(),
  };
  source = await connectedStores(testConfig(sourceEnv));
  restored = await connectedStores(testConfig(restoredEnv));
  await source.s3.ensureBucket();
  folder = await mkdtemp(join(tmpdir(), "kb-archive-"));
});
after(async () => {
  await source.mongo.db.dropDatabase();
  await closeStores(source);
  await closeStores(restored);
  await target.close();
  await shared.close();
  await rm(folder, { recursive: true, force: true });
});

/** Keys naming `kbId` in each Redis database of `config` (a restore writes none today; one that did must clean up). */
async function redisKeysNaming(config: Config, kbId: string): Promise<string[]> {
  const found: string[] = [];
  for (const purpose of Object.keys(config.redis.db) as RedisPurpose[]) {
    const redis = redisClient(config, purpose);
    try {
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", `*${kbId}*`, "COUNT", 500);
        found.push(...keys.map((key) => `${purpose} ${key}`));
        cursor = next;
      } while (cursor !== "0");
    } finally {
      redis.disconnect();
    }
  }
  return found;
}

async function milvusRows(stores: Stores, kbId: string) {
  const iterator = await stores.milvus.client.queryIterator({
    collection_name: collectionName(kbId),
    filter: "",
    output_fields: ["vector", "image_id", "page_number", "file_id"],
    batchSize: 500,
  });
  const rows: string[] = [];
  for await (const batch of iterator as AsyncIterable<
    { vector: number[]; image_id: string; page_number: number; file_id: string }[]
  >) {
    for (const row of batch)
      rows.push(JSON.stringify([row.image_id, Number(row.page_number), row.file_id, row.vector]));
  }
  return rows.sort();
}

test("a knowledge base round-trips through one archive into an empty deployment", async () => {
  const writer = new LayraWriter(source, shared.env.MODEL_SERVER_URL!);
  const kb = await writer.createKnowledgeBase("archivist", "Manuals");
  await writer.ingestFile("archivist", kb.knowledge_base_id, {
    filename: "a.pdf",
    pages: [{ text: "router reset button" }, { text: "wifi password" }],
  });
  await writer.ingestFile("archivist", kb.knowledge_base_id, {
    filename: "b.pdf",
    pages: [{ text: "printer paper jam", tokens: 1500 }],
  });
  const archive = join(folder, "kb.jsonl.gz");

  const phases = new Set<string>();
  const written = await backupKnowledgeBase(source, kb.knowledge_base_id, createWriteStream(archive), (phase) =>
    phases.add(phase),
  );
  assert.deepEqual(phases, new Set(["files", "vectors", "objects"]));
  assert.equal(written.files, 2);
  assert.equal(written.objects, 2 + 3, "two originals and three page images");
  assert.ok(written.vectors > 1500 + 200, `every vector, past one query window (${written.vectors})`);

  const read = await restoreKnowledgeBase(restored, createReadStream(archive));
  assert.deepEqual(read, written);

  const doc = (stores: Stores) =>
    mongoCollections(stores.mongo.db).knowledgeBases.findOne(
      { knowledge_base_id: kb.knowledge_base_id },
      { projection: { _id: 0 } },
    );
  assert.deepEqual(await doc(restored), await doc(source));
  const files = (stores: Stores) =>
    mongoCollections(stores.mongo.db)
      .files.find({ knowledge_db_id: kb.knowledge_base_id }, { projection: { _id: 0 }, sort: { file_id: 1 } })
      .toArray();
  const sourceFiles = await files(source);
  assert.deepEqual(await files(restored), sourceFiles);
  for (const key of sourceFiles.flatMap((file) => [
    file.minio_filename,
    ...file.images.map((image) => image.minio_filename),
  ])) {
    const bytes = async (stores: Stores) =>
      Buffer.concat(await (await stores.s3.client.getObject(stores.s3.bucket, key)).toArray());
    assert.deepEqual(await bytes(restored), await bytes(source), key);
  }
  assert.deepEqual(await milvusRows(restored, kb.knowledge_base_id), await milvusRows(source, kb.knowledge_base_id));

  const query = await source.model.embedText("router reset");
  const search = async (stores: Stores) => {
    const found = await stores.milvus.client.search({
      collection_name: collectionName(kb.knowledge_base_id),
      data: query,
      limit: 10,
      output_fields: ["image_id"],
      metric_type: "IP",
      params: { ef: 64 },
    });
    return (found.results as unknown as { image_id: string; score: number }[][]).map((hits) =>
      hits.map((hit) => `${hit.image_id}:${hit.score.toFixed(5)}`),
    );
  };
  assert.deepEqual(await search(restored), await search(source));

  // The same searchKnowledgeBase answers from a gateway on each deployment.
  const SEARCH = `query($id: String!, $q: String!) { searchKnowledgeBase(knowledgeBaseId: $id, query: $q, topK: 3) { score page { imageId pageNumber } file { fileId filename } } }`;
  const answers = await Promise.all(
    [sourceEnv, restoredEnv].map(async (env) => {
      const gateway = await startGateway(env, { STORE_TIMEOUT_MS: "60000" });
      try {
        const result = await gateway.query<{ searchKnowledgeBase: unknown[] }>(SEARCH, {
          token: await gateway.token("archivist"),
          variables: { id: kb.knowledge_base_id, q: "router reset" },
        });
        assert.equal(result.errors, undefined, JSON.stringify(result.errors));
        return result.data!.searchKnowledgeBase;
      } finally {
        await gateway.app.stop();
      }
    }),
  );
  assert.equal(answers[0]!.length, 3);
  assert.deepEqual(answers[1], answers[0]);

  await assert.rejects(restoreKnowledgeBase(restored, createReadStream(archive)), /already exists/);
});

test("a truncated archive is refused and leaves no knowledge base behind", async () => {
  const writer = new LayraWriter(source, shared.env.MODEL_SERVER_URL!);
  const kb = await writer.createKnowledgeBase("archivist", "Short");
  await writer.ingestFile("archivist", kb.knowledge_base_id, { filename: "c.pdf", pages: [{ text: "one" }] });
  const archive = join(folder, "short.jsonl.gz");
  await backupKnowledgeBase(source, kb.knowledge_base_id, createWriteStream(archive));
  const { gunzipSync, gzipSync } = await import("node:zlib");
  const { readFile, writeFile } = await import("node:fs/promises");
  const lines = gunzipSync(await readFile(archive))
    .toString("utf8")
    .trim()
    .split("\n");
  const cut = join(folder, "cut.jsonl.gz");
  await writeFile(cut, gzipSync(lines.slice(0, -1).join("\n")));
  await assert.rejects(restoreKnowledgeBase(restored, createReadStream(cut)), /truncated/);
  const files = await mongoCollections(source.mongo.db).files.find({ knowledge_db_id: kb.knowledge_base_id }).toArray();
  assert.equal(files.length, 1);
  // Nothing in any store: no base or file documents, no Milvus collection, no objects, no Redis keys.
  assert.deepEqual(await knowledgeBaseTraces(restored, kb.knowledge_base_id, files), NOTHING_LEFT);
  assert.deepEqual(await redisKeysNaming(testConfig(restoredEnv), kb.knowledge_base_id), []);
});

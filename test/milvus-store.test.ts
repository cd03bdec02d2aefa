// The Milvus store against a real server: milvus-lite in the main run, and the real Milvus engine
// in the second run of `npm test` (LAYRA_TEST_MILVUS names the engine). Checks LAYRA's schema and
// index, the primary-key order that stage 2's query windows rely on, and the page-vector cache.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { collectionName } from "../src/stores/milvus.js";
import { closeStores, createStores, type Stores } from "../src/stores/index.js";
import { layraId } from "../dev/layra-writer.js";
import { seededRandom } from "./fixtures/search-corpus.js";
import { eventually, sharedStackEnv, testConfig } from "./helpers.js";

const engine = process.env.LAYRA_TEST_MILVUS ?? "milvus-lite";
let stack: Awaited<ReturnType<typeof sharedStackEnv>>;
let stores: Stores;
const created: string[] = [];

before(async () => {
  stack = await sharedStackEnv();
  // The real engine answers its first calls on a fresh collection slowly on a busy machine.
  stores = createStores(testConfig(stack.env, { STORE_TIMEOUT_MS: "60000", SEARCH_QUERY_WINDOW: "100" }));
});
after(async () => {
  for (const kbId of created) await stores.milvus.dropCollection(kbId).catch(() => undefined);
  await closeStores(stores);
  await stack.close();
});

const unit = (i: number) => Array.from({ length: 128 }, (_, k) => (k === i ? 1 : 0));

async function newCollection(): Promise<string> {
  const kbId = layraId("alice");
  created.push(kbId);
  await stores.milvus.createCollection(kbId);
  return kbId;
}

test(`${engine}: LAYRA's collection schema with an HNSW/IP index is created, loaded, written and searched`, async () => {
  const kbId = await newCollection();
  const name = collectionName(kbId);
  assert.ok(!name.includes("-"));
  const { client } = stores.milvus;
  const described = await client.describeCollection({ collection_name: name });
  const fields = Object.fromEntries(described.schema.fields.map((f) => [f.name, String(f.data_type)]));
  assert.deepEqual(fields, {
    pk: "Int64",
    vector: "FloatVector",
    image_id: "VarChar",
    page_number: "Int64",
    file_id: "VarChar",
  });
  const index = await client.describeIndex({ collection_name: name });
  const params = Object.fromEntries(index.index_descriptions[0]!.params.map((p) => [p.key, p.value]));
  assert.equal(params.index_type, "HNSW");
  assert.equal(params.metric_type, "IP");
  assert.deepEqual(JSON.parse(String(params.params)), { M: 32, efConstruction: 500 });
  await stores.milvus.insertRows(
    kbId,
    [0, 1, 2].map((i) => ({ vector: unit(i), image_id: `img${i}`, page_number: i, file_id: "f" })),
  );
  assert.ok(await stores.milvus.readyForSearch(kbId));
  // The real engine searches at bounded staleness (LAYRA's default): new rows show within seconds.
  let candidates: string[] = [];
  await eventually(
    async () =>
      (candidates = (await stores.milvus.candidates(kbId, [unit(1)], 1))[0]!.map((hit) => hit.imageId)).length > 0,
    "the new rows are searchable",
    60_000,
  );
  assert.deepEqual(candidates, ["img1"]);
});

test(`${engine}: reading page vectors does not turn the answers into JSON while the SDK's debug log is off`, async () => {
  // The SDK's retry interceptor stringified every request and answer for a debug line even with
  // debug logging off, most of a stage-2 read's CPU; patches/ makes it do so only when that log is on.
  const kbId = await newCollection();
  const imageId = layraId("alice");
  await stores.milvus.insertRows(
    kbId,
    Array.from({ length: 300 }, (_, i) => ({ vector: unit(i % 128), image_id: imageId, page_number: 0, file_id: "f" })),
  );
  assert.ok(await stores.milvus.readyForSearch(kbId));
  const stringify = JSON.stringify;
  let longest = 0;
  JSON.stringify = function (this: typeof JSON, ...args: unknown[]) {
    const text = (stringify as (...values: unknown[]) => string | undefined).apply(this, args);
    longest = Math.max(longest, text?.length ?? 0);
    return text;
  } as typeof JSON.stringify;
  let rows = 0;
  try {
    for await (const batch of stores.milvus.pageVectors(kbId, [imageId], { fill: false }))
      rows += batch.pages ? 0 : batch.imageIds.length;
  } finally {
    JSON.stringify = stringify;
  }
  assert.equal(rows, 300, "the page was read");
  // Unpatched, this read made about 31,000 characters of JSON.
  assert.ok(longest < 10_000, `the longest JSON made during the read was ${longest} characters`);
});

test(`${engine}: stage-2 windows walk the rows in primary-key order and read every vector of every page exactly once`, async () => {
  const kbId = await newCollection();
  const random = seededRandom(3);
  // Pages inserted one call each, as LAYRA does, interleaved over several calls so that pages'
  // primary keys are not one run; 7 pages of 37..61 rows read in windows of 100 rows.
  const pages = new Map<string, number[][]>();
  for (let p = 0; p < 7; p++) {
    const imageId = layraId("alice");
    const vectors = Array.from({ length: 37 + ((p * 5) % 25) }, () =>
      Array.from({ length: 128 }, () => Math.fround(random() - 0.5)),
    );
    pages.set(imageId, vectors);
    await stores.milvus.insertRows(
      kbId,
      vectors.map((vector) => ({ vector, image_id: imageId, page_number: p, file_id: "f" })),
    );
  }
  assert.ok(await stores.milvus.readyForSearch(kbId));

  // The windows' assumption: a limited query answers the smallest primary keys past the filter, ascending.
  const { client } = stores.milvus;
  const all = await client.query({
    collection_name: collectionName(kbId),
    filter: "pk > 0",
    output_fields: ["pk"],
    limit: 16384,
  });
  const total = [...pages.values()].reduce((sum, rows) => sum + rows.length, 0);
  assert.equal(all.data.length, total);
  const sorted = all.data.map((row) => BigInt(String(row.pk))).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let after = 0n;
  for (let start = 0; start < total; start += 100) {
    const window = await client.query({
      collection_name: collectionName(kbId),
      filter: `pk > ${after}`,
      output_fields: ["pk"],
      limit: 100,
    });
    const pks = window.data.map((row) => BigInt(String(row.pk)));
    assert.deepEqual(pks, sorted.slice(start, start + 100), `window from ${start}`);
    after = pks[pks.length - 1]!;
  }

  // Through the store, uncached and then cached: every page whole, with its exact float32 values.
  const cache = stores.milvus.pageVectorCache;
  cache.clear();
  for (const round of ["from Milvus", "from the cache"]) {
    const read = new Map<string, number[][]>();
    for await (const batch of stores.milvus.pageVectors(kbId, [...pages.keys()], { fill: true })) {
      if (batch.pages) for (const [id, vectors] of batch.pages) read.set(id, rows(vectors));
      else
        rows(batch.vectors).forEach((row, i) => {
          const id = batch.imageIds[i]!;
          read.set(id, [...(read.get(id) ?? []), row]);
        });
    }
    assert.equal(read.size, pages.size, round);
    for (const [id, vectors] of pages) {
      const got = read.get(id)!;
      assert.equal(got.length, vectors.length, `${round}: rows of ${id}`);
      // Rows may come in any order within a page: compare them as sets.
      assert.deepEqual(got.map(String).sort(), vectors.map(String).sort(), `${round}: vectors of ${id}`);
    }
    assert.equal(cache.stats().pages, pages.size, `${round}: every page is cached after the read`);
  }
});

/** A row-major matrix back into rows of 128 numbers. */
function rows(matrix: Float32Array): number[][] {
  return Array.from({ length: matrix.length / 128 }, (_, i) => [...matrix.subarray(i * 128, (i + 1) * 128)]);
}

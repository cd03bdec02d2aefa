// Search from the compact page codes against the real local servers (docs/performance.md, "Search:
// compact codes"): on many near-identical patches across pages the answer is exhaustive MaxSim's
// (from the codes with the re-score engaged, and on the certified two-stage path), pages added and
// files deleted between searches are never stale (nor their codes left in the bucket), a new replica
// reads a base's codes from the bucket instead of Milvus, and the dev writer's concurrent ingestion keeps
// every page visible in milvus-lite. `npm test` runs this file against both Milvus engines.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ConsistencyLevelEnum } from "@zilliz/milvus2-sdk-node";
import type { KnowledgeBaseDoc } from "../src/stores/documents.js";
import { layraId, LayraWriter } from "../dev/layra-writer.js";
import { allPageVectors, exhaustiveRanking, seededRandom } from "./fixtures/search-corpus.js";
import { embedText } from "../dev/stack/model-server.js";
import { pageCodeObjectKey } from "../src/stores/page-code-objects.js";
import { eventually, sharedStackEnv, startGateway, type TestGateway } from "./helpers.js";

let shared: Awaited<ReturnType<typeof sharedStackEnv>>;
let gateway: TestGateway;
let uncachedGateway: TestGateway;
let writer: LayraWriter;
let aliceToken: string;
/** Every base these tests create, dropped from the shared Milvus server at the end. */
const created: string[] = [];

interface Hit {
  score: number;
  page: { imageId: string; pageNumber: number; url: string };
}
type SingleSearchData = { searchKnowledgeBase: Hit[] | null };

const singleSearch = `query ($id: String!, $vectors: [[Float!]!], $topK: Int!) {
  searchKnowledgeBase(knowledgeBaseId: $id, queryVectors: $vectors, topK: $topK) { score page { imageId pageNumber url } }
}`;

/** A second gateway over the same database and bucket with other settings; closing it keeps the data. */
async function gatewayWith(overrides: Record<string, string>): Promise<TestGateway> {
  const other = await startGateway(shared.env, {
    STORE_TIMEOUT_MS: "30000",
    MONGODB_DB: gateway.config.mongo.database,
    MINIO_BUCKET_NAME: gateway.config.s3.bucket,
    ...overrides,
  });
  return { ...other, close: () => other.app.stop() };
}

/** Searches the base once and waits for its pages to be coded. */
async function warmUp(client: TestGateway, id: string): Promise<void> {
  const vector = Array.from({ length: 128 }, (_, k) => (k === 0 ? 1 : 0));
  const result = await client.query<SingleSearchData>(singleSearch, {
    variables: { id, vectors: [vector], topK: 1 },
    token: aliceToken,
  });
  assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  await client.app.stores.milvus.warmUpsDone();
}

before(async () => {
  shared = await sharedStackEnv();
  // milvus-lite builds a fresh collection's index on its first search, which can take seconds.
  gateway = await startGateway(shared.env, { STORE_TIMEOUT_MS: "30000" });
  writer = new LayraWriter(gateway.app.stores, gateway.config.model.url);
  aliceToken = await gateway.token("alice");
  uncachedGateway = await gatewayWith({ SEARCH_CACHE_BYTES: "0" });
});

after(async () => {
  try {
    for (const id of created) await gateway.app.stores.milvus.dropCollection(id).catch(() => undefined);
  } finally {
    await uncachedGateway.close();
    await gateway.close();
    await shared.close();
  }
});

test("files ingested concurrently into one base are inserted into Milvus one at a time, so milvus-lite's auto ids never collide", async () => {
  // milvus-lite allocates auto ids without a lock: concurrent inserts into one collection got the
  // same primary keys, and a page's rows hid another's (a 2,000-page build stuck at 1,999 pages).
  const kb = await writer.createKnowledgeBase("alice", "concurrent ingestion", { id: layraId("search") });
  const { milvus } = gateway.app.stores;
  const insertRows = milvus.insertRows;
  let inFlight = 0;
  let most = 0;
  milvus.insertRows = async (...args) => {
    most = Math.max(most, ++inFlight);
    try {
      return await insertRows(...args);
    } finally {
      inFlight--;
    }
  };
  try {
    const files = await Promise.all(
      Array.from({ length: 6 }, (_, f) =>
        writer.ingestFile("alice", kb.knowledge_base_id, {
          filename: `concurrent-${f}.pdf`,
          pages: Array.from({ length: 4 }, (_, p) => ({ text: `concurrent${f} page${p}` })),
        }),
      ),
    );
    assert.equal(most, 1, "inserts into one base in flight at once");
    const pages = files.flatMap((file) => file.images.map((image) => image.images_id));
    await eventually(
      async () => (await allPageVectors(milvus.client, kb.knowledge_base_id)).size === pages.length,
      "every page visible in Milvus",
      120_000,
    );
  } finally {
    milvus.insertRows = insertRows;
    await milvus.dropCollection(kb.knowledge_base_id).catch(() => undefined);
  }
});

const TIED_WORDS = ["tiealpha", "tiebeta", "tiegamma"];

/**
 * The 5,000-page failure in small: each of three words shows on 70 pages, more than stage 1's 50
 * rows per query vector, so those rows are all ties at similarity 1, and 12 pages (ingested last)
 * show several of the words. Answers the base and its stored vectors once all 222 pages show.
 */
let tiedBase: Promise<{ kb: KnowledgeBaseDoc; stored: Map<string, number[][]> }> | null = null;
function tiedPatchesBase(): Promise<{ kb: KnowledgeBaseDoc; stored: Map<string, number[][]> }> {
  return (tiedBase ??= buildTiedPatchesBase());
}

async function buildTiedPatchesBase(): Promise<{ kb: KnowledgeBaseDoc; stored: Map<string, number[][]> }> {
  const kb = await writer.createKnowledgeBase("alice", "near-identical patches", { id: layraId("search") });
  created.push(kb.knowledge_base_id);
  let filler = 0;
  const page = (text: string) => ({ text: `${text} filler${filler++}`, tokens: 16 });
  for (const word of TIED_WORDS)
    await writer.ingestFile("alice", kb.knowledge_base_id, {
      filename: `${word}.pdf`,
      pages: Array.from({ length: 70 }, () => page(word)),
    });
  await writer.ingestFile("alice", kb.knowledge_base_id, {
    filename: "targets.pdf",
    pages: [
      ...Array.from({ length: 6 }, () => page(TIED_WORDS.join(" "))),
      ...Array.from({ length: 6 }, (_, i) => page(TIED_WORDS.filter((_, w) => w !== i % 3).join(" "))),
    ],
  });
  let stored = new Map<string, number[][]>();
  await eventually(
    async () => (stored = await allPageVectors(gateway.app.stores.milvus.client, kb.knowledge_base_id)).size === 222,
    "every page visible in Milvus",
    120_000,
  );
  return { kb, stored };
}

/** The exhaustive top k of `vectors` over `stored`, with the hits compared against it (up to exact ties). */
function assertExhaustiveTop(
  hits: Hit[],
  k: number,
  vectors: number[][],
  stored: Map<string, number[][]>,
  label: string,
) {
  const ranking = exhaustiveRanking(vectors, stored);
  const exact = new Map(ranking.map((page) => [page.imageId, page.score]));
  assert.equal(hits.length, k, label);
  hits.forEach((hit, i) => {
    assert.ok(
      Math.abs(hit.score - ranking[i]!.score) < 1e-5,
      `${label}, rank ${i}: ${hit.score} vs ${ranking[i]!.score}`,
    );
    assert.ok(
      Math.abs(hit.score - exact.get(hit.page.imageId)!) < 1e-5,
      `${label}: ${hit.page.imageId} is scored exactly`,
    );
  });
  // Without a tie at the k-th place, the very same pages.
  if (ranking[k - 1]!.score - (ranking[k]?.score ?? -Infinity) > 1e-5)
    assert.deepEqual(
      hits.map((hit) => hit.page.imageId).sort(),
      ranking
        .slice(0, k)
        .map((page) => page.imageId)
        .sort(),
      label,
    );
}

/** Searches the tied base for all three words: no errors, a certified answer, the exhaustive top 10. */
async function searchAllTiedWords(
  client: TestGateway,
  id: string,
  stored: Map<string, number[][]>,
  label: string,
): Promise<void> {
  const vectors = embedText(TIED_WORDS.join(" "));
  const result = await client.query<SingleSearchData>(singleSearch, {
    variables: { id, vectors, topK: 10 },
    token: aliceToken,
  });
  assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  assert.deepEqual(result.extensions?.search, { certified: true, uncertifiedKnowledgeBaseIds: [] });
  assertExhaustiveTop(result.data!.searchKnowledgeBase!, 10, vectors, stored, label);
}

test("many pages sharing the query's patches: the two-stage answer is the exhaustive one, proven, or says it is not", async () => {
  const { kb, stored } = await tiedPatchesBase();
  const vectors = embedText(TIED_WORDS.join(" "));
  const truth = exhaustiveRanking(vectors, stored).slice(0, 10);
  assert.ok(truth[9]!.score > 2, "the top 10 are the pages showing several query words");
  const variables = { id: kb.knowledge_base_id, vectors, topK: 10 };
  const capped = await gatewayWith({ SEARCH_CACHE_BYTES: "0", SEARCH_CERTIFY_MAX_LIMIT: "50" });
  try {
    // uncachedGateway: the two-stage path alone, widening stage 1 until the answer is proven.
    const result = await uncachedGateway.query<SingleSearchData>(singleSearch, { variables, token: aliceToken });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    const hits = result.data!.searchKnowledgeBase!;
    // The same pages (the six showing every word tie at 3, so their order is the sums' last bits).
    assert.deepEqual(hits.map((hit) => hit.page.imageId).sort(), truth.map((hit) => hit.imageId).sort());
    hits.forEach((hit, i) =>
      assert.ok(Math.abs(hit.score - truth[i]!.score) < 1e-5, `${hit.score} vs ${truth[i]!.score}`),
    );
    assert.deepEqual(result.extensions?.search, { certified: true, uncertifiedKnowledgeBaseIds: [] });

    // Not allowed to widen, the same search answers what it found and says that it is unproven.
    const unproven = await capped.query<SingleSearchData>(singleSearch, { variables, token: aliceToken });
    assert.equal(unproven.errors, undefined, JSON.stringify(unproven.errors));
    assert.equal(unproven.data!.searchKnowledgeBase!.length, 10);
    assert.deepEqual(unproven.extensions?.search, {
      certified: false,
      uncertifiedKnowledgeBaseIds: [kb.knowledge_base_id],
    });
    const metrics = await (await fetch(`${capped.url}/metrics`)).text();
    assert.match(metrics, /^search_answers_total\{path="two-stage",certified="false"\} 1$/m);
  } finally {
    await capped.close();
  }
});

test("from the cached codes on many near-identical patches: the exhaustive top 10, with the bound ruling out most pages and the rest re-scored", async () => {
  const { kb, stored } = await tiedPatchesBase();
  const id = kb.knowledge_base_id;
  const { pageCodeCache, pageVectorCache } = gateway.app.stores.milvus;
  await warmUp(gateway, id);
  assert.deepEqual(pageCodeCache.holding(id, [...stored.keys()]).missing, [], "every page is coded");
  // The warm-up read every page's float32 rows to code them, and the float share had room: it kept them.
  assert.deepEqual(pageVectorCache.holding(id, [...stored.keys()]).missing, [], "every float page kept");
  const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
  const codedPages = Number(/^page_code_cache_pages (\d+)$/m.exec(metrics)?.[1]);
  assert.ok(codedPages >= stored.size, `page_code_cache_pages ${codedPages} for ${stored.size} coded pages`);
  assert.match(metrics, /^page_code_cache_bytes [1-9]/m);
  // The three words together, each pair, and the same moved by noise (no exact ties left).
  const random = seededRandom(17);
  const texts = [TIED_WORDS.join(" "), ...TIED_WORDS.map((_, i) => TIED_WORDS.filter((_, w) => w !== i).join(" "))];
  const queries = texts.flatMap((text) => {
    const vectors = embedText(text);
    const moved = vectors.map((vector) => {
      const raw = vector.map((value) => value + (random() - 0.5) * 0.05);
      const norm = Math.hypot(...raw);
      return raw.map((value) => value / norm);
    });
    return [
      { label: `"${text}"`, vectors },
      { label: `near "${text}"`, vectors: moved },
    ];
  });
  for (const query of queries) {
    const before = pageVectorCache.stats();
    const result = await gateway.query<SingleSearchData>(singleSearch, {
      variables: { id, vectors: query.vectors, topK: 10 },
      token: aliceToken,
    });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    assert.deepEqual(result.extensions?.search, { certified: true, uncertifiedKnowledgeBaseIds: [] });
    assertExhaustiveTop(result.data!.searchKnowledgeBase!, 10, query.vectors, stored, query.label);
    // Re-scored: some pages' float vectors were looked up, far from all of them, and none read from Milvus.
    const after = pageVectorCache.stats();
    const rescored = after.hits - before.hits;
    assert.ok(rescored >= 10 && rescored < 111, `${query.label}: ${rescored} of 222 pages re-scored`);
    assert.equal(after.misses, before.misses, `${query.label}: a re-scored page read from Milvus`);
  }
});

test("a new replica reads a base's codes from the bucket: its first search runs from memory, exactly, and a damaged object is coded from Milvus again", async () => {
  const { kb, stored } = await tiedPatchesBase();
  const id = kb.knowledge_base_id;
  const { pageCodeObjects, mongo, s3 } = gateway.app.stores;
  // The first warm-up coded the base (ingested as LAYRA does, so without codes) and wrote each file's object.
  await warmUp(gateway, id);
  const files = await mongo.files.findByKnowledgeBase(id, "alice");
  assert.equal(files.length, 4);
  for (const file of files) {
    const pages = await pageCodeObjects.read(file.file_id, Infinity);
    assert.deepEqual(
      [...(pages?.keys() ?? [])].sort(),
      file.images.map((image) => image.images_id).sort(),
      `${file.filename}: an object with each of its pages`,
    );
  }
  // The 12-page file's object is damaged: too few pages to leave the in-memory path, read from Milvus.
  const targets = files.find((file) => file.filename === "targets.pdf")!;
  await s3.putObject(pageCodeObjectKey(targets.file_id), Buffer.from("LGPC damaged"), "application/octet-stream");

  const fresh = await gatewayWith({});
  try {
    await searchAllTiedWords(fresh, id, stored, "the fresh replica's first search");
    // Without the bucket, 210 pages missing from a cold cache would take the two-stage path.
    const metrics = await (await fetch(`${fresh.url}/metrics`)).text();
    assert.match(metrics, /^search_answers_total\{path="memory",certified="true"\} 1$/m);
    assert.doesNotMatch(metrics, /^search_answers_total\{path="two-stage"/m);
    assert.deepEqual(fresh.app.stores.milvus.pageCodeCache.holding(id, [...stored.keys()]).missing, []);
    // The damaged object is written again, whole, by the warm-up that followed.
    await fresh.app.stores.milvus.warmUpsDone();
    const rewritten = await pageCodeObjects.read(targets.file_id, Infinity);
    assert.equal(rewritten?.size, 12, "targets.pdf's object rewritten with its 12 pages");
  } finally {
    await fresh.close();
  }
});

test("re-scoring reads wait for no timestamp and check each page's rows against its codes: a page short of rows is read again strongly and never cached short", async () => {
  const { kb, stored } = await tiedPatchesBase();
  const id = kb.knowledge_base_id;
  await warmUp(gateway, id);
  const fresh = await gatewayWith({});
  const { client, pageVectorCache } = fresh.app.stores.milvus;
  const query = client.query.bind(client);
  const reads: { strong: boolean; eventually: boolean; filter: string }[] = [];
  let cut: string | null = null;
  // The first page read answers one row short, as a read behind the latest insert could.
  client.query = async (request: Parameters<typeof query>[0]) => {
    const answer = await query(request);
    const filter = String(request.filter ?? "");
    if (filter.includes("image_id in")) {
      const strong = request.consistency_level === ConsistencyLevelEnum.Strong;
      reads.push({ strong, eventually: request.consistency_level === ConsistencyLevelEnum.Eventually, filter });
      if (!strong && cut === null && answer.data.length > 0) {
        cut = String(answer.data.at(-1)!.image_id);
        answer.data = answer.data.slice(0, -1);
      }
    }
    return answer;
  };
  try {
    await searchAllTiedWords(fresh, id, stored, "with a page read short");
    assert.ok(cut, "a re-scoring read that is not strong");
    assert.ok(
      reads.filter((read) => !read.strong).every((read) => read.eventually),
      `every re-scoring read before the strong one is eventually consistent: ${JSON.stringify(reads)}`,
    );
    const strongReads = reads.filter((read) => read.strong);
    assert.equal(strongReads.length, 1, JSON.stringify(reads));
    assert.ok(strongReads[0]!.filter.includes(JSON.stringify(cut)), "the short page is read again strongly");
    const held = [...stored.keys()].filter((page) => pageVectorCache.peek(id, [page]));
    assert.ok(held.length >= 10, `${held.length} re-scored pages cached`);
    for (const page of held)
      assert.equal(pageVectorCache.peek(id, [page])!.get(page)!.length, stored.get(page)!.length * 128, page);
  } finally {
    await fresh.close();
  }
});

test("pages added and a file deleted between two searches from the codes: new pages scored, deleted ones never returned, their codes gone", async () => {
  const kb = await writer.createKnowledgeBase("alice", "codes change", { id: layraId("search") });
  const id = kb.knowledge_base_id;
  const base = await writer.ingestFile("alice", id, {
    filename: "base.pdf",
    pages: Array.from({ length: 20 }, (_, i) => ({ text: `codesbase${i} codescommon` })),
  });
  const { pageCodeCache } = gateway.app.stores.milvus;
  /** Searches the base and checks the hits against exhaustive MaxSim over `pages` of what Milvus stores. */
  const search = async (text: string, pages: readonly string[]) => {
    const vectors = embedText(text);
    const result = await gateway.query<SingleSearchData>(singleSearch, {
      variables: { id, vectors, topK: 5 },
      token: aliceToken,
    });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    const hits = result.data!.searchKnowledgeBase!;
    const stored = await allPageVectors(gateway.app.stores.milvus.client, id);
    const listed = new Map(pages.map((page) => [page, stored.get(page)!]));
    assertExhaustiveTop(hits, 5, vectors, listed, `"${text}"`);
    return hits.map((hit) => hit.page.imageId);
  };
  try {
    await eventually(
      async () => (await allPageVectors(gateway.app.stores.milvus.client, id)).size === 20,
      "the base visible in Milvus",
      120_000,
    );
    await warmUp(gateway, id);
    const basePages = base.images.map((image) => image.images_id);
    assert.deepEqual(pageCodeCache.holding(id, basePages).missing, [], "the base is coded");
    const { pageCodeObjects } = gateway.app.stores;
    assert.equal((await pageCodeObjects.read(base.file_id, Infinity))?.size, 20, "base.pdf's codes in the bucket");
    assert.equal((await search("codescommon codesbase3", basePages))[0], basePages[3]);

    // Added after the codes: the next search reads them whole, scores them and codes them.
    const added = await writer.ingestFile("alice", id, {
      filename: "added.pdf",
      pages: [{ text: "codesnew codescommon" }, { text: "codesnew" }],
    });
    const addedPages = added.images.map((image) => image.images_id);
    await eventually(
      async () => (await allPageVectors(gateway.app.stores.milvus.client, id)).size === 22,
      "the added pages visible in Milvus",
      120_000,
    );
    const withAdded = await search("codesnew codescommon", [...basePages, ...addedPages]);
    assert.equal(withAdded[0], addedPages[0], "the added page showing both words comes first");
    assert.deepEqual(pageCodeCache.holding(id, addedPages).missing, [], "the added pages are coded");
    await gateway.app.stores.milvus.warmUpsDone();
    assert.equal((await pageCodeObjects.read(added.file_id, Infinity))?.size, 2, "added.pdf's codes in the bucket");

    // Deleted through the gateway: never returned again, and their codes leave the cache.
    const deleted = await gateway.query<{ deleteFiles: string[] }>(
      "mutation ($ids: [String!]!) { deleteFiles(fileIds: $ids) }",
      { variables: { ids: [added.file_id] }, token: aliceToken },
    );
    assert.equal(deleted.errors, undefined, JSON.stringify(deleted.errors));
    const afterDelete = await search("codesnew codescommon", basePages);
    assert.ok(
      afterDelete.every((page) => basePages.includes(page)),
      JSON.stringify(afterDelete),
    );
    assert.deepEqual(pageCodeCache.holding(id, addedPages).missing.sort(), [...addedPages].sort(), "codes gone");
    assert.equal(await gateway.app.stores.s3.objectInfo(pageCodeObjectKey(added.file_id)), null, "object gone");
    assert.equal((await pageCodeObjects.read(base.file_id, Infinity))?.size, 20, "base.pdf's object kept");
  } finally {
    await gateway.app.stores.milvus.dropCollection(id).catch(() => undefined);
  }
});

test("a base's files documents are read until they are settled: a file still being ingested is read again on every search until its pages are all listed, and a deleted file is never returned", async () => {
  const kb = await writer.createKnowledgeBase("alice", "settled files", { id: layraId("search") });
  const id = kb.knowledge_base_id;
  created.push(id);
  const done = await writer.ingestFile("alice", id, {
    filename: "done.pdf",
    pages: Array.from({ length: 12 }, (_, i) => ({ text: `settleddone${i} settledcommon` })),
  });
  const growing = await writer.ingestFile("alice", id, {
    filename: "growing.pdf",
    pages: Array.from({ length: 6 }, (_, i) => ({ text: `settledgrowing${i} settledcommon` })),
  });
  const { mongo, milvus } = gateway.app.stores;
  // LAYRA's ingestion between two of its `$push`es: every row in Milvus, the document listing one page.
  await mongo.db
    .collection("files")
    .updateOne({ file_id: growing.file_id }, { $set: { images: growing.images.slice(0, 1) } });
  const pagesOf = (file: typeof done, count = file.images.length) =>
    file.images.slice(0, count).map((image) => image.images_id);
  // The `files` finds of each search, by the file ids their filters name.
  const finds: string[] = [];
  const onCommand = (event: { commandName: string; command: Record<string, unknown> }) => {
    if (event.commandName === "find" && event.command.find === "files")
      finds.push(JSON.stringify(event.command.filter));
  };
  const search = async (text: string, listed: readonly string[]) => {
    const vectors = embedText(text);
    finds.length = 0;
    const result = await gateway.query<SingleSearchData>(singleSearch, {
      variables: { id, vectors, topK: 5 },
      token: aliceToken,
    });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    const stored = await allPageVectors(milvus.client, id);
    const hits = result.data!.searchKnowledgeBase!;
    assertExhaustiveTop(hits, 5, vectors, new Map(listed.map((page) => [page, stored.get(page)!])), `"${text}"`);
    await milvus.warmUpsDone();
    await mongo.settledFiles.checks.idle();
    return { hits: hits.map((hit) => hit.page.imageId), finds: [...finds] };
  };
  const readsOnly = (reads: string[], file: typeof done) =>
    reads.length > 0 && reads.every((filter) => filter.includes(file.file_id) && !filter.includes(done.file_id));
  mongo.client.on("commandStarted", onCommand);
  try {
    await eventually(
      async () => (await allPageVectors(milvus.client, id)).size === 18,
      "both files in Milvus",
      120_000,
    );
    let listed = [...pagesOf(done), ...pagesOf(growing, 1)];
    // The first search reads both documents and codes the pages; the second settles done.pdf only:
    // Milvus holds rows of growing.pdf that its document does not list yet.
    assert.ok(
      (await search("settledcommon settleddone2", listed)).finds.length > 0,
      "the first search reads the files",
    );
    await search("settledcommon settleddone2", listed);
    const third = await search("settledcommon settleddone5", listed);
    assert.equal(third.hits[0], pagesOf(done)[5]);
    assert.ok(readsOnly(third.finds, growing), `only growing.pdf is read: ${JSON.stringify(third.finds)}`);

    // The rest of its pages pushed: the next search lists and scores them, and then growing.pdf settles too.
    await mongo.db
      .collection("files")
      .updateOne({ file_id: growing.file_id }, { $push: { images: { $each: growing.images.slice(1) } } } as never);
    listed = [...pagesOf(done), ...pagesOf(growing)];
    const grown = await search("settledcommon settledgrowing3", listed);
    assert.equal(grown.hits[0], pagesOf(growing)[3], "a page pushed after the first searches is found");
    await search("settledcommon settledgrowing3", listed);
    const settled = await search("settledcommon settledgrowing2", listed);
    assert.equal(settled.hits[0], pagesOf(growing)[2]);
    assert.deepEqual(settled.finds, [], "no files document is read once both are settled");

    // Deleted through the gateway: its ref leaves the base, so it is never listed again.
    const deleted = await gateway.query<{ deleteFiles: string[] }>(
      "mutation ($ids: [String!]!) { deleteFiles(fileIds: $ids) }",
      { variables: { ids: [done.file_id] }, token: aliceToken },
    );
    assert.equal(deleted.errors, undefined, JSON.stringify(deleted.errors));
    const afterDelete = await search("settledcommon settleddone5", pagesOf(growing));
    assert.ok(
      afterDelete.hits.every((page) => pagesOf(growing).includes(page)),
      JSON.stringify(afterDelete.hits),
    );
    assert.deepEqual(afterDelete.finds, [], "the settled growing.pdf is still not read");
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    const settledPages = Number(/^settled_file_pages (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(settledPages >= 6, `settled_file_pages ${settledPages}: growing.pdf's 6 pages at least`);
  } finally {
    mongo.client.off("commandStarted", onCommand);
  }
});

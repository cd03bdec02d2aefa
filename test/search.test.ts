// searchKnowledgeBase(s) against the real local servers: results equal exhaustive MaxSim on a
// corpus made through the model server (from the page-vector cache and without it), long pages are
// scored whole, metadata is one Mongo batch, deleted files never come back from the cache, bad
// input and other users' bases search nothing, and a store down fails the search field only.
// `npm test` runs this file against milvus-lite and again against the real Milvus engine.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { KnowledgeBaseDoc } from "../src/stores/documents.js";
import { CodeBounds, type PageCodes } from "../src/lib/page-codes.js";
import { collectionName } from "../src/stores/milvus.js";
import { mongoCollections } from "../src/stores/mongo.js";
import { layraId, LayraWriter } from "../dev/layra-writer.js";
import {
  allPageVectors,
  buildSearchCorpus,
  corpusQueries,
  exhaustiveRanking,
  seededRandom,
  type SearchCorpus,
} from "./fixtures/search-corpus.js";
import { callsTo, privateStack, sharedStackEnv, startGateway, storeCallCounts, type TestGateway } from "./helpers.js";

let shared: Awaited<ReturnType<typeof sharedStackEnv>>;
let gateway: TestGateway;
let writer: LayraWriter;
let corpus: SearchCorpus;
let aliceToken: string;
let bobToken: string;
let bobBase: KnowledgeBaseDoc;

interface Hit {
  score: number;
  page: { imageId: string; pageNumber: number; url: string };
  file: { fileId: string; filename: string };
  knowledgeBase: { knowledgeBaseId: string };
}
type SearchData = { searchKnowledgeBases: Hit[] | null };
type SingleSearchData = { searchKnowledgeBase: Hit[] | null };

const hitFields = "score page { imageId pageNumber url } file { fileId filename } knowledgeBase { knowledgeBaseId }";
const multiSearch = `query ($ids: [String!]!, $query: String, $vectors: [[Float!]!], $topK: Int!, $threshold: Float) {
  searchKnowledgeBases(knowledgeBaseIds: $ids, query: $query, queryVectors: $vectors, topK: $topK, scoreThreshold: $threshold) { ${hitFields} }
}`;
const singleSearch = `query ($id: String!, $query: String, $vectors: [[Float!]!], $topK: Int!) {
  searchKnowledgeBase(knowledgeBaseId: $id, query: $query, queryVectors: $vectors, topK: $topK) { ${hitFields} }
}`;

/** A second gateway over the same database and bucket with other settings; closing it keeps the data. */
async function gatewayWith(overrides: Record<string, string>, env = shared.env): Promise<TestGateway> {
  const other = await startGateway(env, {
    STORE_TIMEOUT_MS: "30000",
    MONGODB_DB: gateway.config.mongo.database,
    MINIO_BUCKET_NAME: gateway.config.s3.bucket,
    ...overrides,
  });
  return { ...other, close: () => other.app.stop() };
}

/** Searches each base once and waits for the page-vector cache to hold all its pages. */
async function warmUp(client: TestGateway, ids: string[]): Promise<void> {
  const vector = Array.from({ length: 128 }, (_, k) => (k === 0 ? 1 : 0));
  const result = await client.query<SearchData>(multiSearch, {
    variables: { ids, vectors: [vector], topK: 1 },
    token: aliceToken,
  });
  assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  await client.app.stores.milvus.warmUpsDone();
}

let uncachedGateway: TestGateway;

/** Every stored page's vectors, read once from Milvus for the tests that rank exhaustively. */
let storedPages: Promise<Map<string, number[][]>> | null = null;
function storedVectors(): Promise<Map<string, number[][]>> {
  storedPages ??= (async () => {
    const stored = new Map<string, number[][]>();
    for (const kb of corpus.knowledgeBases)
      for (const [id, vectors] of await allPageVectors(gateway.app.stores.milvus.client, kb.knowledge_base_id))
        stored.set(id, vectors);
    return stored;
  })();
  return storedPages;
}

/**
 * How many of `hits` are in the exhaustive top 10 (`truth`, image id -> score); each of those must
 * carry its exhaustive score (the sums run in another order), and the hits come best first.
 */
function inExhaustiveTop(hits: Hit[], truth: Map<string, number>, label: string): number {
  for (const hit of hits) {
    const exact = truth.get(hit.page.imageId);
    if (exact !== undefined)
      assert.ok(Math.abs(exact - hit.score) < 1e-4, `${label}: ${hit.score} vs exhaustive ${exact}`);
  }
  for (let i = 1; i < hits.length; i++) assert.ok(hits[i - 1]!.score >= hits[i]!.score, "best first");
  return hits.filter((hit) => truth.has(hit.page.imageId)).length;
}

/** The exhaustive top 10 of `vectors` over every stored page: image id -> score. */
async function exhaustiveTop10(vectors: number[][]): Promise<Map<string, number>> {
  const truth = exhaustiveRanking(vectors, await storedVectors()).slice(0, 10);
  return new Map(truth.map((page) => [page.imageId, page.score]));
}

before(async () => {
  shared = await sharedStackEnv();
  // milvus-lite builds a fresh collection's index on its first search, which can take seconds.
  gateway = await startGateway(shared.env, { STORE_TIMEOUT_MS: "30000" });
  writer = new LayraWriter(gateway.app.stores, gateway.config.model.url);
  corpus = await buildSearchCorpus(writer, "alice");
  aliceToken = await gateway.token("alice");
  bobToken = await gateway.token("bob");
  uncachedGateway = await gatewayWith({ SEARCH_CACHE_BYTES: "0" });
  bobBase = await writer.createKnowledgeBase("bob", "bob's base");
  await writer.ingestFile("bob", bobBase.knowledge_base_id, {
    filename: "bob.pdf",
    pages: [{ text: "term1 term2 term3" }],
  });
});

after(async () => {
  try {
    // The shared Milvus server outlives this file: drop what it created (slow drops are not failures).
    const { client } = gateway.app.stores.milvus;
    const ours = [...corpus.knowledgeBases, bobBase].map((kb) => collectionName(kb.knowledge_base_id));
    const collections = await client.listCollections({ timeout: 30_000 });
    for (const { name } of collections.data) {
      if (ours.includes(name) || name.startsWith("colqwensearch_"))
        await client.dropCollection({ collection_name: name, timeout: 30_000 }).catch(() => undefined);
    }
  } finally {
    await uncachedGateway.close();
    await gateway.close();
    await shared.close();
  }
});

test("the corpus is what the acceptance criteria ask for: 200+ pages of 100+ vectors over several files and two bases", async () => {
  assert.ok(corpus.pages >= 200);
  assert.equal(corpus.knowledgeBases.length, 2);
  assert.ok(corpus.files.length >= 4);
  for (const kb of corpus.knowledgeBases) {
    const pages = await allPageVectors(gateway.app.stores.milvus.client, kb.knowledge_base_id);
    for (const vectors of pages.values()) assert.ok(vectors.length >= 100);
  }
});

test("the top 10 equals exhaustive MaxSim over every stored vector (recall@10 1.0, equal scores) once the bases are cached; stage-1 recall is reported", async () => {
  const stored = await storedVectors();
  const queries = corpusQueries(corpus, 24);
  const ids = corpus.knowledgeBases.map((kb) => kb.knowledge_base_id);
  // Stage 1 at a fixed limit (not widened): the recall reported below is that limit's.
  const narrow = await gatewayWith({
    SEARCH_CANDIDATE_LIMIT: "10",
    SEARCH_CERTIFY_MAX_LIMIT: "10",
    SEARCH_CACHE_BYTES: "0",
  });
  const fixed = await gatewayWith({ SEARCH_CERTIFY_MAX_LIMIT: "50", SEARCH_CACHE_BYTES: "0" });
  await warmUp(gateway, ids);
  try {
    const recall = { default: 0 };
    for (const query of queries) {
      const variables = { ids, topK: 10, ...(query.text ? { query: query.text } : { vectors: query.vectors }) };
      const result = await gateway.query<SearchData>(multiSearch, { variables, token: aliceToken });
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      const hits = result.data!.searchKnowledgeBases!;
      assert.equal(hits.length, 10, query.label);
      recall.default += inExhaustiveTop(hits, await exhaustiveTop10(query.vectors), query.label) / 10;
    }
    const atDefault = recall.default / queries.length;
    console.log(`recall@10 over ${queries.length} queries from the cache: ${atDefault.toFixed(4)}`);
    assert.equal(atDefault, 1, `recall@10 ${atDefault}`);

    // Reported, not asserted: queries of random unit vectors match no page's words, so the top 10
    // hangs on many near-ties among patch vectors; this is where the stage-1 limit shows.
    const random = seededRandom(11);
    const hard = { default: 0, narrow: 0 };
    const HARD = 6;
    for (let q = 0; q < HARD; q++) {
      const vectors = Array.from({ length: 6 }, () => {
        const raw = Array.from({ length: 128 }, () => random() - 0.5);
        const norm = Math.hypot(...raw);
        return raw.map((value) => value / norm);
      });
      const truth = new Set(
        exhaustiveRanking(vectors, stored)
          .slice(0, 10)
          .map((page) => page.imageId),
      );
      const variables = { ids, topK: 10, vectors };
      for (const [side, gw] of [
        ["default", fixed],
        ["narrow", narrow],
      ] as const) {
        const result = await gw.query<SearchData>(multiSearch, { variables, token: aliceToken });
        assert.equal(result.errors, undefined, `${side}: ${JSON.stringify(result.errors)}`);
        const hits = result.data!.searchKnowledgeBases!;
        hard[side] += hits.filter((hit) => truth.has(hit.page.imageId)).length / 10;
      }
    }
    console.log(
      `recall@10 over ${HARD} random-vector queries without the cache: ${(hard.default / HARD).toFixed(4)} at stage-1 limit ${gateway.config.search.candidateLimit}, ${(hard.narrow / HARD).toFixed(4)} at limit 10`,
    );
  } finally {
    await narrow.close();
    await fixed.close();
  }
});

test("answers from the page-vector cache are exact, and equal those without it, also under a tiny budget that evicts", async () => {
  const ids = corpus.knowledgeBases.map((kb) => kb.knowledge_base_id);
  // 4.2 MB: a base's codes (2 MB) are more than half the code cache (7/8 of it), so the two-stage
  // search reads its candidates, at most 64 pages (3.7 MB) per read, into the float cache (1/8 of
  // it, about 9 pages): pages are evicted.
  const tiny = await gatewayWith({ SEARCH_CACHE_BYTES: "4200000" });
  // The tiny budget's searches never read a base's codes from the bucket: its row count says they cannot fit.
  const objects = tiny.app.stores.pageCodeObjects;
  const read = objects.read.bind(objects);
  let objectReads = 0;
  objects.read = (...args) => (objectReads++, read(...args));
  await warmUp(gateway, ids);
  try {
    const cache = gateway.app.stores.milvus.pageVectorCache;
    for (const query of corpusQueries(corpus, 6, 21)) {
      const variables = { ids, topK: 10, ...(query.text ? { query: query.text } : { vectors: query.vectors }) };
      const answers = [];
      for (const client of [uncachedGateway, gateway, tiny]) {
        const result = await client.query<SearchData>(multiSearch, { variables, token: aliceToken });
        assert.equal(result.errors, undefined, JSON.stringify(result.errors));
        answers.push(result.data!.searchKnowledgeBases!);
      }
      const [uncached, cached, evicting] = answers.map((hits) => hits.map((hit) => [hit.page.imageId, hit.score]));
      assert.equal(uncached!.length, 10);
      // Whole bases from the cache are ranked exhaustively: the exact top 10, on either engine.
      const inTop = inExhaustiveTop(answers[1]!, await exhaustiveTop10(query.vectors), query.label);
      assert.equal(inTop, 10, `cached vs exhaustive: ${query.label}`);
      // Under the tiny budget the two-stage path reads its candidates through the cache: the same
      // stage-1 search, so the same answer as without the cache.
      assert.deepEqual(evicting, uncached, `tiny budget vs uncached: ${query.label}`);
      // On milvus-lite the two-stage answer is the exact one as well (bench:search: recall@10 1.0
      // without the cache); the real engine's HNSW stage 1 may miss a page (there 0.9933).
      if ((process.env.LAYRA_TEST_MILVUS ?? "milvus-lite") === "milvus-lite")
        assert.deepEqual(cached, uncached, `cached vs uncached: ${query.label}`);
    }
    const codes = gateway.app.stores.milvus.pageCodeCache.stats();
    assert.ok(codes.hits > 0 && codes.pages >= corpus.pages, JSON.stringify(codes));
    assert.ok(cache.stats().hits > 0, JSON.stringify(cache.stats()));
    const small = tiny.app.stores.milvus.pageVectorCache.stats();
    assert.ok(small.evictions > 0 && small.bytes <= small.budgetBytes, JSON.stringify(small));
    assert.equal(objectReads, 0, "no code object read for bases beyond the budget");
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    assert.match(metrics, /^page_vector_cache_hits_total [1-9]/m);
    assert.match(metrics, /^page_vector_cache_bytes [1-9]/m);
  } finally {
    await tiny.close();
  }
});

test("a long in-memory search gives the event loop back: a `{ __typename }` sent as the code scan starts answers before it ends", async () => {
  const ids = corpus.knowledgeBases.map((kb) => kb.knowledge_base_id);
  await warmUp(gateway, ids);
  // 256 query vectors over the 250 coded pages: about a billion products, far more than one slice.
  const random = seededRandom(5);
  const vectors = Array.from({ length: 256 }, () => Array.from({ length: 128 }, () => random() - 0.5));
  const addPage = CodeBounds.prototype.addPage;
  let scored = 0;
  let scoredWhenAnswered: number | null = null;
  const sent: { typename?: Promise<void> } = {};
  CodeBounds.prototype.addPage = function (this: CodeBounds, pageId: string, pageCodes: PageCodes) {
    sent.typename ??= gateway.query<{ __typename: string }>("{ __typename }").then((result) => {
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      assert.equal(result.data!.__typename, "Query");
      scoredWhenAnswered = scored;
    });
    scored++;
    addPage.call(this, pageId, pageCodes);
    // As a base of thousands of pages would: the kernel alone is now too quick here for the scan to
    // need many slices, and the answer's round trip takes several turns of the event loop.
    for (const start = performance.now(); performance.now() - start < 1;);
  };
  try {
    const result = await gateway.query<SearchData>(multiSearch, {
      variables: { ids, vectors, topK: 3 },
      token: aliceToken,
    });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    assert.equal(result.data!.searchKnowledgeBases!.length, 3);
    await sent.typename;
  } finally {
    CodeBounds.prototype.addPage = addPage;
  }
  assert.ok(scored >= corpus.pages, `${scored} pages bounded from their codes`);
  assert.ok(
    scoredWhenAnswered !== null && scoredWhenAnswered < scored,
    `{ __typename } answered after ${scoredWhenAnswered} of ${scored} pages were scored`,
  );
});

test("the planner sizes a base it holds nothing of by its stored rows: one search in a fresh process codes the whole base", async () => {
  // 16 MB: half the code cache's share (14 MB) holds a base of 125 pages of ~114 vectors as codes
  // (2 MB), not 125 pages of 1,024 (17 MB); the float share (2 MB) holds the pages it re-scores.
  const fresh = await gatewayWith({ SEARCH_CACHE_BYTES: "16000000" });
  try {
    const kb = corpus.knowledgeBases[0]!;
    const pages = corpus.files
      .filter((file) => file.knowledge_db_id === kb.knowledge_base_id)
      .flatMap((file) => file.images.map((image) => image.images_id));
    await warmUp(fresh, [kb.knowledge_base_id]);
    const codes = fresh.app.stores.milvus.pageCodeCache;
    assert.deepEqual(codes.holding(kb.knowledge_base_id, pages).missing, [], "every page of the base is coded");
    const [query] = corpusQueries(corpus, 1, 31);
    const search = async () => {
      const result = await fresh.query<SingleSearchData>(singleSearch, {
        variables: { id: kb.knowledge_base_id, vectors: query!.vectors, topK: 10 },
        token: aliceToken,
      });
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      assert.equal(result.data!.searchKnowledgeBase!.length, 10);
    };
    // The first search reads the float vectors of the pages the codes cannot rule out; no stage 1.
    const before = await storeCallCounts(fresh.app.metrics);
    await search();
    const first = await storeCallCounts(fresh.app.metrics);
    assert.equal(first.get("milvus search") ?? 0, before.get("milvus search") ?? 0, "no stage-1 search");
    await search();
    assert.equal(
      callsTo(await storeCallCounts(fresh.app.metrics), "milvus"),
      callsTo(first, "milvus"),
      "searched from memory",
    );
  } finally {
    await fresh.close();
  }
});

test("a deleted file's pages never appear, though the cache still holds them", async () => {
  const kb = await writer.createKnowledgeBase("alice", "deletes", { id: layraId("search") });
  const kept = await writer.ingestFile("alice", kb.knowledge_base_id, {
    filename: "kept.pdf",
    pages: [{ text: "alpha beta" }, { text: "gamma" }],
  });
  const gone = await writer.ingestFile("alice", kb.knowledge_base_id, {
    filename: "gone.pdf",
    pages: [{ text: "delta epsilon" }],
  });
  const pages = await allPageVectors(gateway.app.stores.milvus.client, kb.knowledge_base_id);
  const goneId = gone.images[0]!.images_id;
  const target = pages.get(goneId)![0]!;
  await warmUp(gateway, [kb.knowledge_base_id]);
  const variables = { id: kb.knowledge_base_id, vectors: [target], topK: 5 };
  const before = await gateway.query<SingleSearchData>(singleSearch, { variables, token: aliceToken });
  assert.equal(before.errors, undefined, JSON.stringify(before.errors));
  assert.equal(before.data!.searchKnowledgeBase![0]!.page.imageId, goneId);

  // Deleted behind our back as LAYRA's delete_file_from_knowledge_base does it (the base's ref pulled,
  // then the document deleted; its Milvus rows even left in place): nothing evicts it, and the file
  // was settled by the searches before.
  const { knowledgeBases, files } = mongoCollections(gateway.app.stores.mongo.db);
  await gateway.app.stores.mongo.settledFiles.checks.idle();
  assert.deepEqual(
    gateway.app.stores.mongo.settledFiles.lookup(kb.knowledge_base_id, [kept.file_id, gone.file_id]).unsettled,
    [],
    "settled",
  );
  // FerretDB's $pull takes whole elements only.
  const holder = await knowledgeBases.findOne({ knowledge_base_id: kb.knowledge_base_id });
  const ref = holder!.files.find((candidate) => candidate.file_id === gone.file_id)!;
  await knowledgeBases.updateOne({ knowledge_base_id: kb.knowledge_base_id }, { $pull: { files: ref } });
  await files.deleteOne({ file_id: gone.file_id });
  const cache = gateway.app.stores.milvus.pageVectorCache;
  assert.deepEqual(cache.holding(kb.knowledge_base_id, [goneId]).missing, [], "still cached");
  const after = await gateway.query<SingleSearchData>(singleSearch, { variables, token: aliceToken });
  assert.equal(after.errors, undefined, JSON.stringify(after.errors));
  const hits = after.data!.searchKnowledgeBase!;
  assert.deepEqual(hits.map((hit) => hit.page.imageId).sort(), kept.images.map((image) => image.images_id).sort());
});

test("hits carry their page (1-based number, fresh URL), file and base; equal queries answer in one order", async () => {
  const [query] = corpusQueries(corpus, 1, 99);
  const kb = corpus.knowledgeBases[0]!;
  const variables = { id: kb.knowledge_base_id, query: query!.text, topK: 5 };
  const first = await gateway.query<SingleSearchData>(singleSearch, { variables, token: aliceToken });
  const second = await gateway.query<SingleSearchData>(singleSearch, { variables, token: aliceToken });
  assert.equal(first.errors, undefined, JSON.stringify(first.errors));
  assert.equal(second.errors, undefined, JSON.stringify(second.errors));
  const hits = first.data!.searchKnowledgeBase!;
  assert.equal(hits.length, 5);
  assert.deepEqual(
    hits.map((hit) => hit.page.imageId),
    second.data!.searchKnowledgeBase!.map((hit) => hit.page.imageId),
  );
  for (const hit of hits) {
    assert.equal(hit.knowledgeBase.knowledgeBaseId, kb.knowledge_base_id);
    const file = corpus.files.find((candidate) => candidate.file_id === hit.file.fileId)!;
    const image = file.images.find((candidate) => candidate.images_id === hit.page.imageId)!;
    assert.equal(hit.page.pageNumber, image.page_number);
    assert.ok(hit.page.pageNumber >= 1);
    const png = await fetch(hit.page.url);
    assert.equal(png.status, 200);
    assert.ok(
      new URL(hit.page.url).searchParams.has("X-Amz-Signature"),
      "a fresh presigned URL, not LAYRA's stored one",
    );
  }
  // A threshold leaves out the pages below it.
  const threshold = hits[2]!.score;
  const above = await gateway.query<SearchData>(multiSearch, {
    variables: { ids: [kb.knowledge_base_id], query: query!.text, topK: 5, threshold },
    token: aliceToken,
  });
  assert.equal(above.errors, undefined, JSON.stringify(above.errors));
  assert.ok(above.data!.searchKnowledgeBases!.every((hit) => hit.score >= threshold));
  assert.equal(above.data!.searchKnowledgeBases!.length, 3);
});

test("a page with more than 1000 vectors is scored over all of them, also when read in small windows", async () => {
  const kb = await writer.createKnowledgeBase("alice", "long pages", { id: layraId("search") });
  await writer.ingestFile("alice", kb.knowledge_base_id, {
    filename: "long.pdf",
    pages: [{ text: "appendix", tokens: 1200 }, { text: "cover" }],
  });
  const pages = await allPageVectors(gateway.app.stores.milvus.client, kb.knowledge_base_id);
  const [longId, longVectors] = [...pages].find(([, vectors]) => vectors.length === 1200)!;
  // The query is the page's vector #1100: LAYRA's limit=1000 re-rank query never reads it.
  const target = longVectors[1100]!;
  const dot = (a: number[], b: number[]) => a.reduce((sum, value, k) => sum + value * b[k]!, 0);
  assert.ok(
    Math.max(...longVectors.slice(0, 1000).map((vector) => dot(vector, target))) < 0.9,
    "the first 1000 vectors hold no match",
  );
  const small = await gatewayWith({ SEARCH_QUERY_WINDOW: "500" });
  try {
    for (const client of [gateway, small]) {
      const result = await client.query<SingleSearchData>(singleSearch, {
        variables: { id: kb.knowledge_base_id, vectors: [target], topK: 2 },
        token: aliceToken,
      });
      assert.equal(result.errors, undefined);
      const [best] = result.data!.searchKnowledgeBase!;
      assert.equal(best!.page.imageId, longId);
      assert.ok(Math.abs(best!.score - 1) < 1e-5, `score ${best!.score}`);
    }
  } finally {
    await small.close();
  }
});

test("the Mongo commands of one search do not grow with topK", async () => {
  const { client } = gateway.app.stores.mongo;
  let commands = 0;
  const count = () => {
    commands++;
  };
  client.on("commandStarted", count);
  try {
    const per: number[] = [];
    for (const topK of [1, 10, 50]) {
      commands = 0;
      const result = await gateway.query<SearchData>(multiSearch, {
        variables: { ids: corpus.knowledgeBases.map((kb) => kb.knowledge_base_id), query: "term3 term10 term42", topK },
        token: aliceToken,
      });
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      assert.equal(result.data!.searchKnowledgeBases!.length, topK);
      per.push(commands);
    }
    assert.deepEqual(per, [per[0], per[0], per[0]]);
    assert.ok(per[0]! <= 2, `one lookup for the bases and one for the files, got ${per[0]}`);
  } finally {
    client.off("commandStarted", count);
  }
});

test("bad input and other users' bases give a typed error and search nothing", async () => {
  const kbId = corpus.knowledgeBases[0]!.knowledge_base_id;
  const vector = Array.from({ length: 128 }, (_, k) => (k === 0 ? 1 : 0));
  const cases: {
    name: string;
    query: string;
    variables?: Record<string, unknown>;
    token?: string;
    code: string;
    argument?: string;
  }[] = [
    {
      name: "topK 0",
      query: singleSearch,
      variables: { id: kbId, query: "term1", topK: 0 },
      code: "BAD_USER_INPUT",
      argument: "topK",
    },
    {
      name: "topK 101",
      query: singleSearch,
      variables: { id: kbId, query: "term1", topK: 101 },
      code: "BAD_USER_INPUT",
      argument: "topK",
    },
    {
      name: "both query and vectors",
      query: singleSearch,
      variables: { id: kbId, query: "term1", vectors: [vector], topK: 3 },
      code: "BAD_USER_INPUT",
      argument: "query",
    },
    {
      name: "neither",
      query: singleSearch,
      variables: { id: kbId, topK: 3 },
      code: "BAD_USER_INPUT",
      argument: "query",
    },
    {
      name: "blank text",
      query: singleSearch,
      variables: { id: kbId, query: "  ", topK: 3 },
      code: "BAD_USER_INPUT",
      argument: "query",
    },
    {
      name: "no vectors",
      query: singleSearch,
      variables: { id: kbId, vectors: [], topK: 3 },
      code: "BAD_USER_INPUT",
      argument: "queryVectors",
    },
    {
      name: "127-d vector",
      query: singleSearch,
      variables: { id: kbId, vectors: [vector.slice(1)], topK: 3 },
      code: "BAD_USER_INPUT",
      argument: "queryVectors",
    },
    {
      name: "a non-finite number (GraphQL literal 1e400 parses to Infinity)",
      query: `{ searchKnowledgeBase(knowledgeBaseId: ${JSON.stringify(kbId)}, queryVectors: [[${["1e400", ...vector.slice(1)].join(",")}]]) { score } }`,
      code: "BAD_USER_INPUT",
      argument: "queryVectors",
    },
    {
      name: "no bases",
      query: multiSearch,
      variables: { ids: [], query: "term1", topK: 3 },
      code: "BAD_USER_INPUT",
      argument: "knowledgeBaseIds",
    },
    {
      name: "another user's base",
      query: singleSearch,
      variables: { id: bobBase.knowledge_base_id, query: "term1", topK: 3 },
      code: "NOT_FOUND",
    },
    {
      name: "another user's base among own ones",
      query: multiSearch,
      variables: { ids: [kbId, bobBase.knowledge_base_id], query: "term1", topK: 3 },
      code: "NOT_FOUND",
    },
    {
      name: "a missing base",
      query: singleSearch,
      variables: { id: layraId("alice"), query: "term1", topK: 3 },
      code: "NOT_FOUND",
    },
    {
      name: "no token",
      query: singleSearch,
      variables: { id: kbId, query: "term1", topK: 3 },
      token: "",
      code: "UNAUTHENTICATED",
    },
  ];
  for (const testCase of cases) {
    const before = callsTo(await storeCallCounts(gateway.app.metrics), "milvus");
    const result = await gateway.query<Record<string, Hit[] | null>>(testCase.query, {
      variables: testCase.variables,
      token: testCase.token ?? aliceToken,
    });
    assert.equal(result.errors?.length, 1, `${testCase.name}: ${JSON.stringify(result.errors)}`);
    assert.equal(
      result.errors[0]!.extensions?.code,
      testCase.code,
      `${testCase.name}: ${JSON.stringify(result.errors)}`,
    );
    if (testCase.argument) assert.equal(result.errors[0]!.extensions?.argument, testCase.argument, testCase.name);
    assert.equal(Object.values(result.data ?? {})[0] ?? null, null, `${testCase.name}: no results`);
    assert.equal(
      callsTo(await storeCallCounts(gateway.app.metrics), "milvus"),
      before,
      `${testCase.name}: Milvus was not called`,
    );
  }
  // "Not yours" reads exactly like "does not exist", apart from the id it names.
  const missingId = layraId("bob");
  const notYours = await gateway.query(singleSearch, {
    variables: { id: bobBase.knowledge_base_id, query: "term1", topK: 3 },
    token: aliceToken,
  });
  const missing = await gateway.query(singleSearch, {
    variables: { id: missingId, query: "term1", topK: 3 },
    token: aliceToken,
  });
  assert.equal(
    notYours.errors![0]!.message.replace(bobBase.knowledge_base_id, "ID"),
    missing.errors![0]!.message.replace(missingId, "ID"),
  );
  // Bob searches his own base, temp or not, as usual.
  const own = await gateway.query<SingleSearchData>(singleSearch, {
    variables: { id: bobBase.knowledge_base_id, query: "term1", topK: 3 },
    token: bobToken,
  });
  assert.equal(own.errors, undefined, JSON.stringify(own.errors));
  assert.equal(own.data!.searchKnowledgeBase!.length, 1);
});

test("a base without a collection answers no hits; a released collection is loaded again; a temp base is searchable", async () => {
  const empty = await writer.createKnowledgeBase("alice", "nothing ingested", { id: layraId("search") });
  await gateway.app.stores.milvus.client.dropCollection({ collection_name: collectionName(empty.knowledge_base_id) });
  const none = await gateway.query<SingleSearchData>(singleSearch, {
    variables: { id: empty.knowledge_base_id, query: "term1", topK: 3 },
    token: aliceToken,
  });
  assert.equal(none.errors, undefined);
  assert.deepEqual(none.data!.searchKnowledgeBase, []);

  const temp = await writer.createKnowledgeBase("alice", "temp_base_alice", {
    id: `temp_${layraId("search")}`,
    temp: true,
  });
  await writer.ingestFile("alice", temp.knowledge_base_id, {
    filename: "chat.png",
    pages: [{ text: "attachment words" }],
  });
  const { client } = gateway.app.stores.milvus;
  await client.releaseCollection({ collection_name: collectionName(temp.knowledge_base_id) });
  const found = await gateway.query<SearchData>(multiSearch, {
    variables: {
      ids: [temp.knowledge_base_id, corpus.knowledgeBases[0]!.knowledge_base_id],
      query: "attachment words",
      topK: 3,
    },
    token: aliceToken,
  });
  assert.equal(found.errors, undefined);
  assert.equal(found.data!.searchKnowledgeBases![0]!.knowledgeBase.knowledgeBaseId, temp.knowledge_base_id);
  assert.ok(Math.abs(found.data!.searchKnowledgeBases![0]!.score - 2) < 1e-5);
  await client.dropCollection({ collection_name: collectionName(temp.knowledge_base_id) });
});

test("a hit whose Mongo document does not exist yet is left out, and its Milvus rows are not deleted", async () => {
  const kb = await writer.createKnowledgeBase("alice", "mid-ingestion", { id: layraId("search") });
  await writer.ingestFile("alice", kb.knowledge_base_id, { filename: "done.pdf", pages: [{ text: "orphan check" }] });
  // Ingestion of a second file has written Milvus but not Mongo yet (docs/layra-contract.md, "Ingestion order").
  const pendingImage = layraId("alice");
  const vector = Array.from({ length: 128 }, (_, k) => (k === 5 ? 1 : 0));
  await gateway.app.stores.milvus.insertRows(kb.knowledge_base_id, [
    { vector, image_id: pendingImage, page_number: 0, file_id: layraId("alice") },
  ]);
  const result = await gateway.query<SingleSearchData>(singleSearch, {
    variables: { id: kb.knowledge_base_id, vectors: [vector], topK: 5 },
    token: aliceToken,
  });
  assert.equal(result.errors, undefined);
  const hits = result.data!.searchKnowledgeBase!;
  assert.equal(hits.length, 1, "the ingested page only");
  assert.notEqual(hits[0]!.page.imageId, pendingImage);
  const rows = await gateway.app.stores.milvus.client.query({
    collection_name: collectionName(kb.knowledge_base_id),
    filter: `image_id == ${JSON.stringify(pendingImage)}`,
    output_fields: ["image_id"],
  });
  assert.equal(rows.data.length, 1, "the pending page's rows are still there");

  const best = await gateway.query<SingleSearchData>(singleSearch, {
    variables: { id: kb.knowledge_base_id, vectors: [vector], topK: 1 },
    token: aliceToken,
  });
  assert.equal(best.errors, undefined, JSON.stringify(best.errors));
  assert.deepEqual(
    best.data!.searchKnowledgeBase!.map((hit) => hit.page.imageId),
    [hits[0]!.page.imageId],
    "the next page takes the pending page's place in the top 1",
  );
});

test("with the model server stopped, a text search fails alone with UPSTREAM_UNAVAILABLE; vector searches still answer", async () => {
  const stack = await privateStack(["model"]);
  const down = await gatewayWith({
    MODEL_SERVER_URL: stack.env.MODEL_SERVER_URL,
    MODEL_SERVER_TIMEOUT_MS: "2000",
  });
  try {
    await stack.stopServer("model");
    const kbId = corpus.knowledgeBases[0]!.knowledge_base_id;
    const result = await down.query<{ health: { ready: boolean }; searchKnowledgeBase: Hit[] | null }>(
      `query ($id: String!) { health { ready } searchKnowledgeBase(knowledgeBaseId: $id, query: "term1 term2") { score } }`,
      { variables: { id: kbId }, token: aliceToken },
    );
    assert.equal(result.data!.health.ready, false);
    assert.equal(result.data!.searchKnowledgeBase, null);
    assert.deepEqual(
      result.errors!.map((error) => [error.path, error.extensions?.code]),
      [[["searchKnowledgeBase"], "UPSTREAM_UNAVAILABLE"]],
    );
    const vectors = await down.query<SingleSearchData>(singleSearch, {
      variables: { id: kbId, vectors: corpusQueries(corpus, 1)[0]!.vectors, topK: 3 },
      token: aliceToken,
    });
    assert.equal(vectors.data!.searchKnowledgeBase!.length, 3);
  } finally {
    await down.close();
    await stack.close();
  }
});

test("with Milvus stopped, the search fails alone with UPSTREAM_UNAVAILABLE, and answers again once Milvus is back", async () => {
  const stack = await privateStack(["milvus"]);
  const env = { ...shared.env, MILVUS_URI: stack.env.MILVUS_URI };
  const down = await gatewayWith({ STORE_TIMEOUT_MS: "2000" }, env);
  try {
    const aloneWriter = new LayraWriter(down.app.stores, down.config.model.url);
    const kb = await aloneWriter.createKnowledgeBase("alice", "on the private Milvus");
    await aloneWriter.ingestFile("alice", kb.knowledge_base_id, {
      filename: "p.pdf",
      pages: [{ text: "private milvus" }],
    });
    const query = `query ($id: String!) { health { ready } searchKnowledgeBase(knowledgeBaseId: $id, query: "private milvus", topK: 1) { score } }`;
    await stack.stopServer("milvus");
    const result = await down.query<{ health: { ready: boolean }; searchKnowledgeBase: Hit[] | null }>(query, {
      variables: { id: kb.knowledge_base_id },
      token: aliceToken,
    });
    assert.equal(result.data!.health.ready, false);
    assert.equal(result.data!.searchKnowledgeBase, null);
    assert.deepEqual(
      result.errors!.map((error) => [error.path, error.extensions?.code]),
      [[["searchKnowledgeBase"], "UPSTREAM_UNAVAILABLE"]],
    );

    await stack.startServer("milvus");
    const deadline = Date.now() + 30_000;
    let back: Hit[] | null = null;
    while (!back && Date.now() < deadline) {
      back =
        (
          await down.query<{ searchKnowledgeBase: Hit[] | null }>(query, {
            variables: { id: kb.knowledge_base_id },
            token: aliceToken,
          })
        ).data?.searchKnowledgeBase ?? null;
      if (!back) await new Promise((resolve) => setTimeout(resolve, 300));
    }
    assert.ok(back && Math.abs(back[0]!.score - 2) < 1e-5, "the search answers again once Milvus is back");
  } finally {
    await down.close();
    await stack.close();
  }
});

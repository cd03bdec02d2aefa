// `npm run bench:search`: searchKnowledgeBase on the test corpus, for each Milvus engine (milvus-lite
// and the real Milvus 2.3 engine), the same queries in one run: over HTTP with an empty page-vector
// cache (cold) and with the base cached (warm), with the cache off (the two-stage path alone), one
// stage-1 Milvus search alone (the floor of any path that needs one), the warm work without HTTP
// (direct), and LAYRA's way (one Milvus query per candidate page). recall@10 and the largest score
// difference are against exhaustive MaxSim over every stored vector. Prints `name: value` lines;
// nothing here asserts on time. BENCH_ENGINES=milvus-lite (or milvus) runs one engine only.
// Cold searches read the base's codes from the bucket, written by the first search's warm-up. The page
// list floor is the Mongo read of the base's files documents, which searches skip once the files are
// settled.
// Scale mode, BENCH_PAGES=2000 (or 10000): one base of that many pages, built BENCH_BUILD_CONCURRENCY
// files at a time, each file's rows, pages and document written at once, and the scale figures
// (certified share, bytes per vector, the scan floor: one pass over the base's compact codes with no
// GraphQL); LAYRA's way is left out there, and only the first
// BENCH_COLD_QUERIES (3) queries are timed cold: each cold search is followed by a warm-up that reads
// the whole base out of Milvus again, which at 10,000 pages takes minutes.
import { performance } from "node:perf_hooks";
import type { SearchResultData } from "@zilliz/milvus2-sdk-node";
import type { Context } from "../src/context.js";
import { searchKnowledgeBases } from "../src/resolvers/search.js";
import { createLoaders } from "../src/loaders/index.js";
import { MaxSimScores, toMatrix } from "../src/lib/maxsim.js";
import { CodeBounds, mayEnterTopK } from "../src/lib/page-codes.js";
import { collectionName } from "../src/stores/milvus.js";
import { LayraWriter } from "../dev/layra-writer.js";
import { LocalStack, type StoreServer } from "../dev/stack/stack.js";
import { allPageVectors, buildSearchCorpus, corpusQueries, exhaustiveRanking } from "../test/fixtures/search-corpus.js";
import { startGateway, type TestGateway } from "../test/helpers.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);
const PAGES = Number(process.env.BENCH_PAGES ?? 0);
const SCALE = PAGES > 0;
const QUERIES = Number(process.env.BENCH_QUERIES ?? (SCALE ? 9 : 15));
// LAYRA's way costs one Milvus query per candidate page (~100 here), so it runs on fewer queries.
const LAYRA_QUERIES = SCALE ? 0 : Number(process.env.BENCH_LAYRA_QUERIES ?? 5);
const COLD_QUERIES = Number(process.env.BENCH_COLD_QUERIES ?? (SCALE ? 3 : QUERIES));
const PAGES_PER_FILE = 25;
const BUILD_CONCURRENCY = Number(process.env.BENCH_BUILD_CONCURRENCY ?? 4);
const TOP_K = 10;
const ENGINES = (process.env.BENCH_ENGINES ?? "milvus-lite,milvus").split(",");
// The searching gateway's SEARCH_CACHE_BYTES (its default when unset): a 10,000-page base needs about 400 MB.
const CACHE_BYTES = process.env.BENCH_CACHE_BYTES;

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};
const p50 = (values: number[]) => percentile(values, 50).toFixed(1);

interface Hit {
  score: number;
  page: { imageId: string };
}

async function benchEngine(engine: string): Promise<void> {
  const servers: StoreServer[] = ["mongo", "redis", "s3", "model", engine === "milvus" ? "milvusEngine" : "milvus"];
  const started = performance.now();
  const stack = await LocalStack.start({ only: servers });
  console.log(
    `# ${engine === "milvus" ? "Milvus 2.3.5 (the real engine)" : "milvus-lite 3.2.2"}, up in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  // A fresh collection's index is built on its first search, which can take seconds.
  const gateway = await startGateway(stack.env, {
    STORE_TIMEOUT_MS: "120000",
    ...(CACHE_BYTES ? { SEARCH_CACHE_BYTES: CACHE_BYTES } : {}),
  });
  let uncached: TestGateway | undefined;
  try {
    uncached = await startGateway(stack.env, {
      STORE_TIMEOUT_MS: "120000",
      MONGODB_DB: gateway.config.mongo.database,
      MINIO_BUCKET_NAME: gateway.config.s3.bucket,
      SEARCH_CACHE_BYTES: "0",
    });
    const { stores, config } = gateway.app;
    const { milvus } = stores;
    const { dim } = config.milvus;
    const buildStart = performance.now();
    const corpus = await buildSearchCorpus(
      new LayraWriter(stores, config.model.url),
      "alice",
      SCALE
        ? {
            knowledgeBases: 1,
            filesPerBase: Math.ceil(PAGES / PAGES_PER_FILE),
            pagesPerFile: PAGES_PER_FILE,
            concurrency: BUILD_CONCURRENCY,
            atOnce: true,
          }
        : {},
    );
    const kbId = corpus.knowledgeBases[0]!.knowledge_base_id;
    const buildSeconds = ((performance.now() - buildStart) / 1000).toFixed(1);
    console.log(
      `corpus: ${corpus.pages} pages in ${corpus.files.length} files over ${corpus.knowledgeBases.length} bases, built in ${buildSeconds} s; searching base 0 (${corpus.pages / corpus.knowledgeBases.length} pages)`,
    );
    const stored = await allPageVectors(milvus.client, kbId);
    const vectorCount = [...stored.values()].reduce((sum, rows) => sum + rows.length, 0);
    const token = await gateway.token("alice");
    const queries = corpusQueries(corpus, QUERIES);
    const httpQuery = `query ($id: String!, $vectors: [[Float!]!], $topK: Int!) {
      searchKnowledgeBase(knowledgeBaseId: $id, queryVectors: $vectors, topK: $topK) { score page { imageId pageNumber url } file { filename } }
    }`;
    let certified = 0;
    let searches = 0;
    async function overHttp(client: TestGateway, vectors: number[][]): Promise<Hit[]> {
      const result = await client.query<{ searchKnowledgeBase: Hit[] }>(httpQuery, {
        variables: { id: kbId, vectors, topK: TOP_K },
        token,
      });
      if (result.errors) throw new Error(JSON.stringify(result.errors));
      searches++;
      if ((result.extensions?.search as { certified?: boolean } | undefined)?.certified) certified++;
      return result.data!.searchKnowledgeBase;
    }

    /** The physical floor of a warm search: one pass over the base's compact codes, no GraphQL, no Mongo. */
    async function scanFloor(vectors: number[][]): Promise<void> {
      const bounds = new CodeBounds(toMatrix(vectors, dim), dim);
      const { found } = milvus.pageCodeCache.lookup(kbId, [...stored.keys()]);
      await bounds.addPages(found);
      mayEnterTopK(bounds.bounds, TOP_K, -Infinity);
    }

    /** The same search without GraphQL, HTTP and auth: the resolver function, then the page URLs. */
    async function direct(vectors: number[][]): Promise<void> {
      const viewer = { username: "alice", token };
      const context: Context = {
        config,
        stores,
        live: gateway.app.live,
        viewer,
        authError: null,
        loaders: createLoaders(stores, viewer),
        requestId: "bench",
      };
      const hits = await searchKnowledgeBases(context, {
        knowledgeBaseIds: [kbId],
        queryVectors: vectors,
        topK: TOP_K,
      });
      for (const hit of hits) stores.s3.presignGet(hit.image.minio_filename);
    }

    /** LAYRA's search (docs/layra-contract.md): vectors in the stage-1 output, then one limit=1000 query per candidate page. */
    async function layraWay(vectors: number[][]): Promise<void> {
      const collection_name = collectionName(kbId);
      const found = await milvus.client.search({
        collection_name,
        data: vectors,
        limit: 50,
        metric_type: "IP",
        params: {},
        output_fields: ["vector", "image_id", "page_number", "file_id"],
      });
      const perVector = (vectors.length === 1 ? [found.results] : found.results) as SearchResultData[][];
      const candidates = [...new Set(perVector.flat().map((hit) => String(hit.image_id)))];
      const scores = new MaxSimScores(toMatrix(vectors, dim), dim);
      await Promise.all(
        candidates.map(async (imageId) => {
          const rows = await milvus.client.query({
            collection_name,
            filter: `image_id in ['${imageId}']`,
            output_fields: ["vector", "image_id", "page_number", "file_id"],
            limit: 1000,
          });
          scores.add(
            rows.data.map(() => imageId),
            toMatrix(
              rows.data.map((row) => row.vector as number[]),
              dim,
            ),
          );
        }),
      );
      [...scores.scores()].sort((a, b) => b[1] - a[1]);
    }

    // Untimed: builds the index on the first search and loads the collection.
    await overHttp(uncached, queries[0]!.vectors);
    // The base was written as LAYRA writes it, without page codes in the bucket: the first search's
    // warm-up codes it from Milvus and writes each file's codes there, which every cold search then reads.
    await overHttp(gateway, queries[0]!.vectors);
    const firstWarmUp = performance.now();
    await milvus.warmUpsDone();
    await stores.mongo.settledFiles.checks.idle();
    const firstWarmUpSeconds = ((performance.now() - firstWarmUp) / 1000).toFixed(1);

    certified = searches = 0;
    const timings = {
      cold: [],
      warm: [],
      uncached: [],
      stage1: [],
      direct: [],
      layra: [],
      scan: [],
      list: [],
      base: [],
    } as Record<string, number[]>;
    // Each way starts from a collected heap (bench:search runs node with --expose-gc): at 2,000 pages the
    // uncached way leaves hundreds of MB of row arrays, whose collection otherwise lands in the next way's time.
    const collect = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
    const time = async (name: string, work: () => Promise<unknown>) => {
      collect();
      const start = performance.now();
      await work();
      timings[name]!.push(performance.now() - start);
    };
    const recall = { warm: 0, cold: 0, uncached: 0 };
    let coldAnswers = 0;
    let scoreDifference = 0;
    let answers = 0;
    const check = (side: keyof typeof recall, hits: Hit[], truth: { imageId: string; score: number }[]) => {
      const exact = new Map(truth.map((page) => [page.imageId, page.score]));
      recall[side] += hits.filter((hit) => exact.has(hit.page.imageId)).length / TOP_K;
      if (side === "warm")
        for (const hit of hits)
          if (exact.has(hit.page.imageId))
            scoreDifference = Math.max(scoreDifference, Math.abs(exact.get(hit.page.imageId)! - hit.score));
    };
    // Interleaved, one query at a time, so every way sees the same server state.
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, query] of queries.entries()) {
        const truth = exhaustiveRanking(query.vectors, stored).slice(0, TOP_K);
        let hits: Hit[] = [];
        await time("uncached", async () => (hits = await overHttp(uncached!, query.vectors)));
        check("uncached", hits, truth);
        if (round === 0 && i < COLD_QUERIES) {
          milvus.pageVectorCache.clear();
          milvus.pageCodeCache.clear();
          stores.mongo.settledFiles.forget(kbId);
          await time("cold", async () => (hits = await overHttp(gateway, query.vectors)));
          check("cold", hits, truth);
          coldAnswers++;
          await milvus.warmUpsDone();
          await stores.mongo.settledFiles.checks.idle();
        }
        await time("warm", async () => (hits = await overHttp(gateway, query.vectors)));
        check("warm", hits, truth);
        answers++;
        await time("direct", () => direct(query.vectors));
        await time("stage1", () => milvus.candidates(kbId, query.vectors, config.search.candidateLimit));
        await time("scan", () => scanFloor(query.vectors));
        await time("list", () => stores.mongo.files.findByKnowledgeBase(kbId, "alice"));
        await time("base", () => stores.mongo.knowledgeBases.findOwned("alice", kbId));
        if (round === 0 && i < LAYRA_QUERIES) await time("layra", () => layraWay(query.vectors));
        if (SCALE)
          console.log(`# query ${i + 1} of ${queries.length} (round ${round + 1} of ${ROUNDS}) timed every way`);
      }
    }
    const floats = milvus.pageVectorCache.stats();
    const codes = milvus.pageCodeCache.stats();
    const label = (name: string) => `${name} (${engine})`;
    console.log(
      `${answers} searches each way (${queries.length} queries x ${ROUNDS} rounds, 3-4 query vectors each, topK ${TOP_K}, ${vectorCount} vectors in the base, stage-1 limit ${config.search.candidateLimit})`,
    );
    console.log(`${label("cold p50 ms")}: ${p50(timings.cold!)} (${coldAnswers} searches)`);
    console.log(`${label("warm p50 ms")}: ${p50(timings.warm!)}`);
    console.log(`${label("uncached p50 ms")}: ${p50(timings.uncached!)}`);
    console.log(`${label("stage-1 floor p50 ms")}: ${p50(timings.stage1!)}`);
    console.log(`${label("direct p50 ms")}: ${p50(timings.direct!)}`);
    console.log(`${label("recall@10")}: ${(recall.warm / answers).toFixed(4)}`);
    console.log(`${label("recall@10 cold")}: ${(recall.cold / coldAnswers).toFixed(4)}`);
    console.log(`${label("recall@10 uncached")}: ${(recall.uncached / answers).toFixed(4)}`);
    console.log(`${label("max score difference")}: ${scoreDifference.toExponential(2)}`);
    console.log(
      `${label("cache bytes")}: ${codes.bytes + floats.bytes} (codes ${codes.bytes} for ${codes.pages} pages, budget ${codes.budgetBytes}; float32 ${floats.bytes} for the ${floats.pages} pages re-scored, budget ${floats.budgetBytes})`,
    );
    const codedVectors = [...stored]
      .filter(([imageId]) => milvus.pageCodeCache.holding(kbId, [imageId]).missing.length === 0)
      .reduce((sum, [, rows]) => sum + rows.length, 0);
    console.log(
      `${label("bytes per vector")}: ${codedVectors > 0 ? (codes.bytes / codedVectors).toFixed(1) : "-"} (codes)`,
    );
    console.log(`${label("build s")}: ${buildSeconds}`);
    console.log(
      `${label("first warm-up s")}: ${firstWarmUpSeconds} (coding the base from Milvus, codes written to the bucket)`,
    );
    console.log(`${label("certified share")}: ${(certified / searches).toFixed(4)} of ${searches} searches`);
    console.log(`${label("scan floor p50 ms")}: ${p50(timings.scan!)}`);
    console.log(
      `${label("page list floor p50 ms")}: ${p50(timings.list!)} (reading the base's files documents, which a search skips once they are settled)`,
    );
    console.log(
      `${label("base document floor p50 ms")}: ${p50(timings.base!)} (the base's own document, with its file refs: what a search of a settled base reads)`,
    );
    const settled = stores.mongo.settledFiles.stats();
    console.log(`${label("settled pages")}: ${settled.pages} (of ${corpus.pages}; at most ${settled.maxPages})`);
    if (!SCALE)
      console.log(`${label("LAYRA's way p50 ms")}: ${p50(timings.layra!)} (${timings.layra!.length} searches)`);
  } finally {
    const { client } = gateway.app.stores.milvus;
    const collections = await client.listCollections().catch(() => ({ data: [] as { name: string }[] }));
    for (const { name } of collections.data)
      await client.dropCollection({ collection_name: name }).catch(() => undefined);
    await uncached?.close();
    await gateway.close();
    await stack.close();
  }
}

for (const engine of ENGINES) await benchEngine(engine);

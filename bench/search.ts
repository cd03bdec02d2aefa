// `npm run bench:search`: searchKnowledgeBase over HTTP against the same store work done directly,
// and against LAYRA's way (one Milvus query per candidate page), side by side in one run on the
// test corpus. Prints numbers only; nothing here asserts on time.
import { performance } from "node:perf_hooks";
import type { SearchResultData } from "@zilliz/milvus2-sdk-node";
import { createLoaders } from "../src/loaders/index.js";
import { MaxSimScores, toMatrix } from "../src/lib/maxsim.js";
import { collectionName } from "../src/stores/milvus.js";
import { LayraWriter } from "../dev/layra-writer.js";
import { buildSearchCorpus, corpusQueries } from "../test/fixtures/search-corpus.js";
import { callsTo, sharedStackEnv, startGateway, storeCallCounts } from "../test/helpers.js";
import { Metrics } from "../src/observability/metrics.js";
import { runObserved } from "../src/observability/scope.js";
import { noTracing } from "../src/observability/tracing.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
// LAYRA's way costs one Milvus query per candidate page (~100 here), so it runs on fewer queries.
const LAYRA_QUERIES = Number(process.env.BENCH_LAYRA_QUERIES ?? 5);
const TOP_K = 10;

const stack = await sharedStackEnv();
// milvus-lite builds a fresh collection's index on its first search, which can take seconds.
const gateway = await startGateway(stack.env, { STORE_TIMEOUT_MS: "120000" });
const created: string[] = [];
try {
  const { stores, config } = gateway.app;
  const { dim } = config.milvus;
  const writer = new LayraWriter(stores, config.model.url);
  const buildStart = performance.now();
  const corpus = await buildSearchCorpus(writer, "alice");
  created.push(...corpus.knowledgeBases.map((kb) => collectionName(kb.knowledge_base_id)));
  const kbId = corpus.knowledgeBases[0]!.knowledge_base_id;
  console.log(
    `corpus: ${corpus.pages} pages in ${corpus.files.length} files over ${corpus.knowledgeBases.length} bases, built in ${((performance.now() - buildStart) / 1000).toFixed(1)} s; searching base 0 (${corpus.pages / corpus.knowledgeBases.length} pages)`,
  );
  const token = await gateway.token("alice");
  const queries = corpusQueries(corpus, 20);
  const httpQuery = `query ($id: String!, $vectors: [[Float!]!], $topK: Int!) {
    searchKnowledgeBase(knowledgeBaseId: $id, queryVectors: $vectors, topK: $topK) { score page { imageId pageNumber url } file { filename } }
  }`;

  async function overHttp(vectors: number[][]): Promise<void> {
    const result = await gateway.query(httpQuery, { variables: { id: kbId, vectors, topK: TOP_K }, token });
    if (result.errors) throw new Error(JSON.stringify(result.errors));
  }

  /** The gateway's store work without GraphQL, HTTP, auth or the owner check. */
  async function direct(vectors: number[][]): Promise<void> {
    const loaders = createLoaders(stores, { username: "alice", token });
    if (!(await stores.milvus.readyForSearch(kbId))) throw new Error("no collection");
    const candidates = await stores.milvus.candidates(kbId, vectors, config.search.candidateLimit);
    const scores = new MaxSimScores(toMatrix(vectors, dim), dim);
    for await (const rows of stores.milvus.pageVectors(kbId, candidates))
      scores.add(
        rows.map((row) => row.image_id),
        toMatrix(
          rows.map((row) => row.vector),
          dim,
        ),
      );
    const top = [...scores.scores()]
      .map(([imageId, score]) => ({ imageId, score }))
      .sort((a, b) => b.score - a.score || (a.imageId < b.imageId ? -1 : 1))
      .slice(0, TOP_K);
    const files = await loaders.fileByImage.loadMany(top.map((page) => page.imageId));
    await Promise.all(
      files.map((file, i) =>
        file && !(file instanceof Error)
          ? stores.s3.presignGet(file.images.find((image) => image.images_id === top[i]!.imageId)!.minio_filename)
          : null,
      ),
    );
  }

  /**
   * LAYRA's search (docs/layra-contract.md, "LAYRA's search"): vectors in the stage-1 output, then one
   * limit=1000 query per candidate page.
   */
  let layraCalls = 0;
  async function layraWay(vectors: number[][]): Promise<void> {
    const collection_name = collectionName(kbId);
    layraCalls++;
    const found = await stores.milvus.client.search({
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
        layraCalls++;
        const rows = await stores.milvus.client.query({
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

  const timings = { http: [] as number[], direct: [] as number[], layra: [] as number[] };
  // The direct way runs in an observation scope of its own, whose metrics count its Milvus calls.
  const counting = { metrics: new Metrics(), tracing: noTracing };
  let directCalls = 0;
  let directRuns = 0;
  for (const way of [overHttp, direct, layraWay]) await way(queries[0]!.vectors);
  layraCalls = 0;
  // Interleaved, one at a time, so the ways see the same server state.
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, query] of queries.entries()) {
      let start = performance.now();
      await overHttp(query.vectors);
      timings.http.push(performance.now() - start);

      const callsBefore = callsTo(await storeCallCounts(counting.metrics), "milvus");
      start = performance.now();
      await runObserved(counting, () => direct(query.vectors));
      timings.direct.push(performance.now() - start);
      directCalls += callsTo(await storeCallCounts(counting.metrics), "milvus") - callsBefore;
      directRuns++;

      if (round > 0 || i >= LAYRA_QUERIES) continue;
      start = performance.now();
      await layraWay(query.vectors);
      timings.layra.push(performance.now() - start);
    }
  }

  const percentile = (values: number[], p: number) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
  };
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  const runs = timings.http.length;
  console.log(
    `${runs} searches each way (${queries.length} queries x ${ROUNDS} rounds, 3-4 query vectors each, topK ${TOP_K}, stage-1 limit ${config.search.candidateLimit}, ef ${config.search.ef})`,
  );
  console.log(
    `searchKnowledgeBase over HTTP : p50 ${ms(percentile(timings.http, 50))}, p95 ${ms(percentile(timings.http, 95))}`,
  );
  console.log(
    `same store work, direct       : p50 ${ms(percentile(timings.direct, 50))}, p95 ${ms(percentile(timings.direct, 95))}`,
  );
  console.log(
    `ratio HTTP p50 / direct p50   : ${(percentile(timings.http, 50) / percentile(timings.direct, 50)).toFixed(2)} (target <= 1.2)`,
  );
  console.log(
    `Milvus calls per search       : ${(directCalls / directRuns).toFixed(2)} (load-state check + 1 search + stage-2 query windows)`,
  );
  console.log(
    `LAYRA's way (${timings.layra.length} searches)   : p50 ${ms(percentile(timings.layra, 50))}, p95 ${ms(percentile(timings.layra, 95))}, ${(layraCalls / timings.layra.length).toFixed(1)} Milvus calls per search`,
  );
} finally {
  for (const collection_name of created)
    await gateway.app.stores.milvus.client.dropCollection({ collection_name }).catch(() => undefined);
  await gateway.close();
  await stack.close();
}

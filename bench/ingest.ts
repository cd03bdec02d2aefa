// `npm run bench:ingest`: pages per second of a 40-page PDF uploaded through the gateway and ingested
// by one worker and by two (over Kafka), against the same steps run directly in this process without
// Kafka, the gateway or the progress hash (the floor), with the share of time per stage of the floor.
// Prints `name: value` lines; nothing here asserts on time.
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { ObjectId } from "mongodb";
import { originalObjectKey, pageObjectKey } from "../src/lib/ingestion-contract.js";
import type { PageImageDoc } from "../src/stores/documents.js";
import { createRenderer } from "../src/resolvers/ingestion/page-renderer.js";
import { redisClient, sharedStackEnv, startGateway, type TestGateway } from "../test/helpers.js";
import {
  createTopic,
  ingestOverrides,
  multipartRequest,
  samplePdf,
  startWorkers,
  UPLOAD_FILES,
  waitFor,
  type UploadTaskResult,
} from "../test/ingest-helpers.js";
import { mongoCollections } from "../src/stores/mongo.js";

const PAGES = Number(process.env.BENCH_PAGES ?? 40);
const DPI = process.env.BENCH_DPI ?? "100";
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

const stack = await sharedStackEnv();
const overrides = ingestOverrides({ EMBEDDING_IMAGE_DPI: DPI, EMBEDDING_BATCH_PAGES: "8", STORE_TIMEOUT_MS: "120000" });
const gateway: TestGateway = await startGateway(stack.env, overrides);
const taskDb = redisClient(gateway.config, "task");
const line = (name: string, value: string | number) => console.log(`${name}: ${value}`);
try {
  const { stores, config } = gateway.app;
  await createTopic(config, 2);
  const token = await gateway.token("bench");
  const created = await gateway.query<{ createKnowledgeBase: { knowledgeBaseId: string } }>(
    `mutation { createKnowledgeBase(name: "bench") { knowledgeBaseId } }`,
    { token },
  );
  const knowledgeBaseId = created.data!.createKnowledgeBase.knowledgeBaseId;
  const pdf = await samplePdf(Array.from({ length: PAGES }, (_, i) => `bench page ${i + 1}`));
  line("pages", PAGES);
  line("dpi", DPI);

  /** Upload `copies` PDFs in one task, wait for the task to complete; seconds from request to completion. */
  async function throughGateway(workerCount: number, copies: number): Promise<number> {
    const workers = await startWorkers(gateway, stack.env, overrides, workerCount);
    try {
      const started = performance.now();
      const uploaded = await multipartRequest<{ uploadFiles: UploadTaskResult }>(
        gateway,
        token,
        UPLOAD_FILES,
        { knowledgeBaseId },
        Array.from({ length: copies }, (_, i) => ({ name: `bench-${i}.pdf`, type: "application/pdf", bytes: pdf })),
      );
      if (uploaded.errors) throw new Error(JSON.stringify(uploaded.errors));
      const { taskId } = uploaded.data!.uploadFiles;
      await waitFor(
        "the task to complete",
        async () => (await taskDb.hget(`task:${taskId}`, "status")) === "completed",
        600_000,
      );
      return (performance.now() - started) / 1000;
    } finally {
      await workers();
    }
  }

  /** The worker's steps for one file, timed per stage, with no Kafka, gateway, lock or progress hash. */
  async function floor(): Promise<{ seconds: number; stages: Record<string, number> }> {
    const renderer = createRenderer(config);
    const stages: Record<string, number> = { render: 0, model: 0, milvus: 0, s3: 0, mongo: 0 };
    const timed = async <T>(stage: string, work: () => Promise<T>) => {
      const start = performance.now();
      try {
        return await work();
      } finally {
        stages[stage]! += performance.now() - start;
      }
    };
    const key = originalObjectKey("bench", "floor.pdf", new ObjectId().toHexString());
    await stores.s3.putObject(key, pdf, "application/pdf");
    const fileId = `bench_${randomUUID()}`;
    const started = performance.now();
    const original = (await timed("s3", () => stores.s3.getObject(key)))!;
    const pages = await timed("render", () => renderer.render(original, "floor.pdf"));
    await timed("milvus", () => stores.milvus.createCollection(knowledgeBaseId));
    const images: PageImageDoc[] = [];
    for (let start = 0; start < pages.pageCount; start += config.ingest.batchPages) {
      const indexes = Array.from(
        { length: Math.min(config.ingest.batchPages, pages.pageCount - start) },
        (_, i) => start + i,
      );
      const pngs = await timed("render", () => Promise.all(indexes.map((index) => pages.page(index))));
      const embeddings = await timed("model", () => stores.model.embedImages(pngs, "floor.pdf", start));
      const imageIds = indexes.map(() => `bench_${randomUUID()}`);
      await timed("milvus", () =>
        stores.milvus.insertRows(
          knowledgeBaseId,
          embeddings.flatMap((vectors, i) =>
            vectors.map((vector) => ({ vector, image_id: imageIds[i]!, page_number: indexes[i]!, file_id: fileId })),
          ),
        ),
      );
      const keys = indexes.map((index) => pageObjectKey("bench", "floor.pdf", fileId, index, Date.now()));
      await timed("s3", () =>
        Promise.all(keys.map((pageKey, i) => stores.s3.putObject(pageKey, pngs[i]!, "image/png"))),
      );
      images.push(
        ...indexes.map((index, i) => ({
          images_id: imageIds[i]!,
          minio_filename: keys[i]!,
          minio_url: "",
          page_number: index + 1,
        })),
      );
    }
    await pages.dispose();
    const now = new Date();
    await timed("mongo", async () => {
      await mongoCollections(stores.mongo.db).files.insertOne({
        file_id: fileId,
        filename: "floor.pdf",
        username: "bench",
        minio_filename: key,
        minio_url: "",
        knowledge_db_id: knowledgeBaseId,
        images,
        created_at: now,
        last_modify_at: now,
        is_delete: false,
      });
      await mongoCollections(stores.mongo.db).knowledgeBases.updateOne(
        { knowledge_base_id: knowledgeBaseId },
        {
          $push: {
            files: { file_id: fileId, filename: "floor.pdf", minio_filename: key, minio_url: "", created_at: now },
          },
        },
      );
    });
    return { seconds: (performance.now() - started) / 1000, stages };
  }

  // Warm-up: the first file pays for the collection's creation and the index's first build.
  await floor();
  // The floor and one worker alternate, and medians are reported, so a load spike on a shared
  // machine does not land on one side only.
  const floorRuns: Awaited<ReturnType<typeof floor>>[] = [];
  const oneRuns: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    floorRuns.push(await floor());
    oneRuns.push(await throughGateway(1, 1));
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const floorSeconds = median(floorRuns.map((run) => run.seconds));
  const direct = floorRuns.find((run) => run.seconds === floorSeconds)!;
  const one = median(oneRuns);
  const twoOnOne = await throughGateway(2, 1);
  const twoOnTwo = await throughGateway(2, 2);

  line("rounds", ROUNDS);
  line("floor_pages_per_s", (PAGES / direct.seconds).toFixed(1));
  line("one_worker_pages_per_s", (PAGES / one).toFixed(1));
  line("one_worker_over_floor", (one / direct.seconds).toFixed(2));
  line("two_workers_one_pdf_pages_per_s", (PAGES / twoOnOne).toFixed(1));
  line("two_workers_two_pdfs_pages_per_s", ((2 * PAGES) / twoOnTwo).toFixed(1));
  const total = Object.values(direct.stages).reduce((a, b) => a + b, 0);
  for (const [stage, ms] of Object.entries(direct.stages))
    line(`floor_share_${stage}`, `${((100 * ms) / total).toFixed(1)}%`);
} finally {
  taskDb.disconnect();
  await gateway.close();
  await stack.close();
}

// bench/upload-sweep: what the sweep of presigned uploads never committed costs, on redis-server and
// versitygw. An idle sweep (nothing due: the one Redis script every gateway runs per interval), the
// index's memory per pending upload, then a backlog of UPLOADS uploads with FILES objects each swept
// batch after batch (UPLOAD_SWEEP_BATCH). Prints `name: value` lines.
import { randomUUID } from "node:crypto";
import { sweepExpiredUploads } from "../src/resolvers/ingestion/upload-sweep.js";
import { closeStores, createStores } from "../src/stores/index.js";
import { LocalStack } from "../dev/stack/stack.js";
import { redisClient, testConfig } from "../test/helpers.js";
import { percentile, timeRuns } from "./stats.js";

const UPLOADS = Number(process.env.UPLOADS ?? 1000);
const FILES = Number(process.env.FILES ?? 2);
const BATCH = process.env.UPLOAD_SWEEP_BATCH ?? "100";

const stack = await LocalStack.start({ only: ["redis", "s3"] });
const config = testConfig(stack.env, { UPLOAD_SWEEP_BATCH: BATCH });
const stores = createStores(config);
const taskDb = redisClient(config, "task");
const access = { config, stores };
try {
  await stores.s3.ensureBucket();
  const uploads = stores.redis.pendingUploads;
  const idle = await timeRuns(300, () => sweepExpiredUploads(access));
  console.log(`idle sweep p50 ms: ${percentile(idle, 50).toFixed(2)}`);

  const body = Buffer.from("%PDF-1.4 a small original\n");
  for (let i = 0; i < UPLOADS; i += 1) {
    const files = Array.from({ length: FILES }, (_, f) => ({
      fileId: `bench_${randomUUID()}`,
      filename: `original-${f}.pdf`,
      contentType: "application/pdf",
      size: body.length,
      objectKey: `bench_original-${f}_${randomUUID().replaceAll("-", "").slice(0, 24)}.pdf`,
      stagingKey: `upload-staging_bench_${randomUUID()}_${f}`,
    }));
    await Promise.all(files.map((file) => stores.s3.putObject(file.stagingKey, body, file.contentType)));
    // A deadline already past: every upload is due at once.
    await uploads.save(`bench_${randomUUID()}`, { username: "bench", knowledgeBaseId: "bench_kb", files }, 1);
  }
  const indexBytes = await Promise.all(
    ["due", "objects"].map(async (part) =>
      Number(await taskDb.memory("USAGE", `upload_sweep:${stores.s3.bucket}:${part}`)),
    ),
  );
  console.log(`index bytes per upload (${FILES} objects): ${Math.round((indexBytes[0]! + indexBytes[1]!) / UPLOADS)}`);

  const batches: number[] = [];
  let swept = 0;
  let objects = 0;
  const started = performance.now();
  for (;;) {
    const batchStarted = performance.now();
    const result = await sweepExpiredUploads(access);
    if (result.failure) throw new Error(`sweep failed: ${result.failure.store} ${result.failure.code}`);
    if (result.claimed === 0) break;
    batches.push(performance.now() - batchStarted);
    swept += result.uploads;
    objects += result.objects;
  }
  const seconds = (performance.now() - started) / 1000;
  if (swept !== UPLOADS) throw new Error(`swept ${swept} of ${UPLOADS} uploads`);
  console.log(`batch of ${BATCH} uploads p50 ms: ${percentile(batches, 50).toFixed(1)}`);
  console.log(`uploads swept per second: ${Math.round(swept / seconds)}`);
  console.log(`objects removed per second: ${Math.round(objects / seconds)}`);
} finally {
  taskDb.disconnect();
  await closeStores(stores);
  await stack.close();
}

// Presigned uploads that are never committed, on real servers (redis-server, versitygw checking
// signatures, Kafka): after the commit deadline a sweep removes the objects a client PUT, a committed
// upload is never touched, a commit racing several sweepers has exactly one winner, and a sweep
// with S3 down keeps the upload for the next one. Deadlines are 20 s (no grace): twice the shortest URL
// expiry, so a create, PUT and commit on a busy machine land well before the deadline they must beat.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createServer } from "node:net";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import type { Redis } from "ioredis";
import type { LocalStack } from "../dev/stack/stack.js";
import { createLogger } from "../src/observability/logger.js";
import { sweepExpiredUploads, type SweepResult } from "../src/resolvers/ingestion/upload-sweep.js";
import { closeStores, createStores, type Stores } from "../src/stores/index.js";
import { eventually, privateStack, redisClient, sharedStackEnv, startGateway, type TestGateway } from "./helpers.js";
import { createTopic, ingestOverrides } from "./ingest-helpers.js";

const CREATE_KB = `mutation { createKnowledgeBase(name: "sweep") { knowledgeBaseId } }`;
const CREATE_URLS = `mutation($id: String!, $files: [UploadFileInput!]!) {
  createUploadUrls(knowledgeBaseId: $id, files: $files) { uploadId expiresAt commitBy files { filename url } } }`;
const COMMIT = `mutation($uploadId: String!) { commitUploads(uploadId: $uploadId) { taskId } }`;
const BODY = Buffer.from("%PDF-1.4 an original that is never ingested here\n");

let shared: Awaited<ReturnType<typeof sharedStackEnv>>;
let s3Stack: LocalStack;
let env: Record<string, string>;
let overrides: Record<string, string>;
let gw: TestGateway;
const logLines: string[] = [];
let token: string;
let knowledgeBaseId: string;
/** The task database every gateway here shares (all but one run on `env`): the sweep index and its marks. */
let taskDb: Redis;

interface Upload {
  uploadId: string;
  /** Where the PUTs wrote (what the sweep removes). */
  objectKeys: string[];
  /** Where a commit copies them. */
  originalKeys: string[];
  commitBy: string;
}

before(async () => {
  shared = await sharedStackEnv();
  s3Stack = await privateStack(["s3"]);
  env = {
    ...shared.env,
    MINIO_URL: s3Stack.env.MINIO_URL,
    MINIO_PUBLIC_URL: s3Stack.env.MINIO_PUBLIC_URL,
    MINIO_ACCESS_KEY: s3Stack.env.MINIO_ACCESS_KEY,
    MINIO_SECRET_KEY: s3Stack.env.MINIO_SECRET_KEY,
  };
  overrides = ingestOverrides({
    UPLOAD_URL_EXPIRY_SECONDS: "20",
    UPLOAD_COMMIT_GRACE_SECONDS: "0",
    UPLOAD_SWEEP_INTERVAL_SECONDS: "1",
    UPLOAD_SWEEP_RETRY_SECONDS: "2",
  });
  const logger = createLogger({ logLevel: "info" }, { write: (line: string) => void logLines.push(line) });
  gw = await startGateway(env, overrides, { logger });
  taskDb = redisClient(gw.config, "task");
  await createTopic(gw.config, 1);
  token = await gw.token("ann");
  knowledgeBaseId = await newKnowledgeBase(gw);
});
after(async () => {
  taskDb?.disconnect();
  await gw?.close();
  await s3Stack?.close();
  await shared?.close();
});

async function newKnowledgeBase(through: TestGateway): Promise<string> {
  const created = await through.query<{ createKnowledgeBase: { knowledgeBaseId: string } }>(CREATE_KB, { token });
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  return created.data!.createKnowledgeBase.knowledgeBaseId;
}

/** Another replica on the same database and bucket, sweeping on its own interval. */
const replica = () =>
  startGateway(env, {
    ...overrides,
    MONGODB_DB: gw.config.mongo.database,
    MINIO_BUCKET_NAME: gw.config.s3.bucket,
  });

const index = (bucket: string) => ({
  due: `upload_sweep:${bucket}:due`,
  sweeping: `upload_sweep:${bucket}:sweeping`,
  objects: `upload_sweep:${bucket}:objects`,
});

/** Creates an upload of `files` files and PUTs every one of them through its presigned URL. */
async function uploadWithoutCommit(files = 1, through = gw, kb = knowledgeBaseId): Promise<Upload> {
  const declared = Array.from({ length: files }, (_, i) => ({
    filename: `big-${i}.pdf`,
    contentType: "application/pdf",
    size: BODY.length,
  }));
  const created = await through.query<{
    createUploadUrls: { uploadId: string; commitBy: string; files: { url: string }[] };
  }>(CREATE_URLS, { variables: { id: kb, files: declared }, token });
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  const urls = created.data!.createUploadUrls;
  for (const file of urls.files) {
    const put = await fetch(file.url, {
      method: "PUT",
      headers: { "content-type": "application/pdf" },
      body: new Uint8Array(BODY),
    });
    assert.equal(put.status, 200);
  }
  const raw = await taskDb.hget(index(through.config.s3.bucket).objects, urls.uploadId);
  assert.ok(raw, "the upload is indexed");
  // The index holds the keys the PUTs wrote; a commit copies them to the originals' keys.
  const record = JSON.parse((await taskDb.get(`upload:${urls.uploadId}`))!) as { files: { objectKey: string }[] };
  return {
    uploadId: urls.uploadId,
    objectKeys: JSON.parse(raw) as string[],
    originalKeys: record.files.map((file) => file.objectKey),
    commitBy: urls.commitBy,
  };
}

async function existing(keys: string[], through = gw): Promise<string[]> {
  const found: string[] = [];
  for (const key of keys) if ((await through.app.stores.s3.objectInfo(key)) !== null) found.push(key);
  return found;
}

/** Where the upload is in the index: "due", "sweeping", or null once it left it. */
async function indexState(uploadId: string): Promise<"due" | "sweeping" | null> {
  const keys = index(gw.config.s3.bucket);
  if ((await taskDb.zscore(keys.due, uploadId)) !== null) return "due";
  if ((await taskDb.zscore(keys.sweeping, uploadId)) !== null) return "sweeping";
  return null;
}

async function deadlineOf(uploadId: string, through = gw): Promise<number> {
  return Number(await taskDb.zscore(index(through.config.s3.bucket).due, uploadId));
}

/** Milliseconds on Redis's clock, the one every claim reads. */
async function redisNow(): Promise<number> {
  const [seconds, micros] = await taskDb.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

const removedObjects = async (app: TestGateway["app"]) =>
  (await app.metrics.uploadSweepObjectsRemoved.get()).values.reduce((sum, value) => sum + value.value, 0);

const commit = (uploadId: string, through: TestGateway = gw) =>
  through.query<{ commitUploads: { taskId: string } }>(COMMIT, { variables: { uploadId }, token });

test("after the deadline the uncommitted upload's objects are removed and a late commit is UPLOAD_EXPIRED; the committed one's stay", async () => {
  const removedBefore = await removedObjects(gw.app);
  const abandoned = await uploadWithoutCommit(2);
  const kept = await uploadWithoutCommit(1);
  assert.deepEqual(await existing(abandoned.objectKeys), abandoned.objectKeys);
  const keptDeadline = await deadlineOf(kept.uploadId);
  const committed = await commit(kept.uploadId);
  assert.equal(committed.errors, undefined, JSON.stringify(committed.errors));
  assert.equal(await indexState(kept.uploadId), null, "a commit takes the upload out of the index");

  await eventually(
    async () => (await existing(abandoned.objectKeys)).length === 0,
    "the gateway's sweep removes the abandoned objects",
    60_000,
  );
  await eventually(async () => (await indexState(abandoned.uploadId)) === null, "the entry ends", 60_000);
  assert.equal(await removedObjects(gw.app), removedBefore + 2, "upload_sweep_objects_removed_total counts both");
  assert.ok(
    logLines.some((line) => {
      const entry = JSON.parse(line) as { msg: string; uploads?: number; objects?: number };
      return entry.msg === "upload sweep removed the objects of uncommitted uploads" && entry.objects === 2;
    }),
    "one summary line for the sweep",
  );

  const late = await commit(abandoned.uploadId);
  assert.equal(late.errors?.[0]?.extensions?.code, "UPLOAD_EXPIRED", JSON.stringify(late));
  assert.equal(late.data?.commitUploads ?? null, null);
  const otherUser = await gw.query(COMMIT, {
    variables: { uploadId: abandoned.uploadId },
    token: await gw.token("bob"),
  });
  assert.equal(
    otherUser.errors?.[0]?.extensions?.code,
    "NOT_FOUND",
    "another user's upload answers like a missing one",
  );

  // A sweep after the committed upload's deadline leaves its objects alone.
  await eventually(async () => (await redisNow()) > keptDeadline, "the committed upload's deadline passes", 60_000);
  const sweep = await sweepExpiredUploads({ config: gw.config, stores: gw.app.stores });
  assert.equal(sweep.failure, null);
  assert.deepEqual(await existing(kept.originalKeys), kept.originalKeys, "a committed upload's originals stay");
  assert.equal(await taskDb.exists(`upload_expired:${kept.uploadId}`), 0);
});

test("commits racing three gateways' sweeps and two more sweepers around the deadline: exactly one winner per upload", async () => {
  const replicas = [await replica(), await replica()];
  const sweepers: Stores[] = [createStores(gw.config), createStores(gw.config)];
  const gateways = [gw, ...replicas];
  try {
    const removedBefore = await Promise.all(gateways.map((gateway) => removedObjects(gateway.app)));
    const uploads: Upload[] = [];
    for (let i = 0; i < 10; i += 1) uploads.push(await uploadWithoutCommit(1));
    const deadlines = await Promise.all(uploads.map((upload) => deadlineOf(upload.uploadId)));
    const deadline = Math.max(...deadlines);
    // Commit i goes out (500 - 100 i) ms before its upload's deadline (up to 400 ms after it) through
    // the three gateways in turn, while two more sweepers loop: some land before, some after, some on it.
    // The first goes out at once, with all the time before its deadline that creating the uploads left,
    // so a commit wins; the last ones, after the deadline, can only lose: both outcomes occur (asserted below).
    const offset = (await redisNow()) - Date.now();
    const committing = Promise.all(
      uploads.map(
        (upload, i) =>
          new Promise<string | null>((resolve) => {
            const delay = i === 0 ? 0 : Math.max(0, deadlines[i]! - offset - Date.now() - 500 + i * 100);
            setTimeout(() => {
              void commit(upload.uploadId, gateways[i % gateways.length]).then((answer) =>
                resolve(answer.errors ? String(answer.errors[0]!.extensions?.code) : null),
              );
            }, delay);
          }),
      ),
    );
    const sweeps: SweepResult[] = [];
    await eventually(async () => (await redisNow()) >= Math.min(...deadlines) - 600, "the race is about to start");
    const sweeping = Promise.all(
      sweepers.map(async (stores) => {
        while ((await redisNow()) < deadline + 1_500)
          sweeps.push(await sweepExpiredUploads({ config: gw.config, stores }));
      }),
    );
    const [codes] = await Promise.all([committing, sweeping]);
    await eventually(
      async () =>
        (await Promise.all(uploads.map((upload) => indexState(upload.uploadId)))).every((state) => state === null),
      "every upload left the index",
      60_000,
    );

    for (const [i, code] of codes.entries()) assert.ok([null, "UPLOAD_EXPIRED"].includes(code), `commit ${i}: ${code}`);
    const won = codes.map((code) => code === null);
    assert.ok(won.includes(true) && won.includes(false), `both a commit and a sweep won: ${JSON.stringify(codes)}`);
    let uncommitted = 0;
    for (const [i, upload] of uploads.entries()) {
      const objects = await existing(upload.objectKeys);
      const marked = await taskDb.exists(`upload_expired:${upload.uploadId}`);
      if (won[i]) {
        assert.deepEqual(
          await existing(upload.originalKeys),
          upload.originalKeys,
          `upload ${i} was committed: its original stays`,
        );
        assert.equal(marked, 0, `upload ${i} was committed, not swept`);
      } else {
        uncommitted += 1;
        assert.deepEqual(objects, [], `upload ${i} was swept: its object is gone`);
        assert.equal(marked, 1, `upload ${i} was swept`);
      }
    }
    const removedByGateways = (await Promise.all(gateways.map((gateway) => removedObjects(gateway.app)))).reduce(
      (sum, removed, i) => sum + removed - removedBefore[i]!,
      0,
    );
    const removedBySweepers = sweeps.reduce((sum, sweep) => sum + sweep.objects, 0);
    assert.ok(
      sweeps.every((sweep) => sweep.failure === null),
      JSON.stringify(sweeps.filter((s) => s.failure)),
    );
    assert.equal(
      removedByGateways + removedBySweepers,
      uncommitted,
      "each swept upload was counted by exactly one sweeper, and no committed one by any",
    );
  } finally {
    await Promise.all(replicas.map((gateway) => gateway.app.stop()));
    await Promise.all(sweepers.map(closeStores));
  }
});

test("a sweep with S3 down keeps the upload for the next one, which removes it once S3 is back", async () => {
  const removedBefore = await removedObjects(gw.app);
  const upload = await uploadWithoutCommit(1);
  const deadline = await deadlineOf(upload.uploadId);
  await s3Stack.stopServer("s3");
  try {
    await eventually(async () => (await redisNow()) > deadline, "the deadline passes", 60_000);
    const sweep = await sweepExpiredUploads({ config: gw.config, stores: gw.app.stores });
    // The gateway's own sweeps may have taken it first; either way it is still indexed.
    assert.ok(sweep.failure === null || sweep.failure.store === "s3", JSON.stringify(sweep));
    assert.equal(sweep.objects, 0);
    assert.equal(await indexState(upload.uploadId), "sweeping", "the entry stays for the next sweep");
    await eventually(
      () =>
        logLines.some((line) => {
          const entry = JSON.parse(line) as { msg: string; store?: string };
          return entry.msg === "upload sweep postponed" && entry.store === "s3";
        }),
      "the gateway logs the postponed sweep",
    );
    const health = await fetch(`${gw.url}/health`);
    assert.equal(health.status, 200, "the process keeps running");
  } finally {
    await s3Stack.startServer("s3");
  }
  await eventually(async () => (await indexState(upload.uploadId)) === null, "a later sweep ends the entry", 60_000);
  assert.deepEqual(await existing(upload.objectKeys), []);
  assert.equal(await removedObjects(gw.app), removedBefore + 1);
  const s3Address = new URL(env.MINIO_URL!).host;
  for (const line of logLines) {
    assert.ok(!line.includes(s3Address), `no store address in a log line: ${line}`);
    assert.ok(!line.includes(env.MINIO_SECRET_KEY!), "no secret in a log line");
  }
});

test("with UPLOAD_SWEEP_INTERVAL_SECONDS=0 the gateway never sweeps; npm run maintenance removes what is due", async () => {
  const quiet = await startGateway(env, { ...overrides, UPLOAD_SWEEP_INTERVAL_SECONDS: "0" });
  try {
    const upload = await uploadWithoutCommit(1, quiet, await newKnowledgeBase(quiet));
    const deadline = await deadlineOf(upload.uploadId, quiet);
    await eventually(
      async () => (await redisNow()) > deadline + 2_000,
      "the deadline and two sweep intervals pass",
      60_000,
    );
    assert.deepEqual(await existing(upload.objectKeys, quiet), upload.objectKeys, "no sweep ran in the gateway");

    const run = await promisify(execFile)(process.execPath, ["--import", "tsx", "src/cli/maintenance.ts"], {
      env: {
        ...process.env,
        ...env,
        SECRET_KEY: "x",
        NODE_ENV: "test",
        MONGODB_DB: quiet.config.mongo.database,
        MINIO_BUCKET_NAME: quiet.config.s3.bucket,
      },
    });
    const summary = JSON.parse(run.stdout.trim().split("\n").pop()!) as { expiredUploadsSwept: unknown };
    assert.deepEqual(summary.expiredUploadsSwept, { uploads: 1, objects: 1, postponed: 0 });
    assert.deepEqual(await existing(upload.objectKeys, quiet), []);
    assert.ok(!run.stdout.includes(new URL(env.MINIO_URL!).host), "no store address in the output");
  } finally {
    await quiet.close();
  }
});

test("concurrent commits of one upload: exactly one starts a task", async () => {
  const upload = await uploadWithoutCommit(1);
  const answers = await Promise.all(Array.from({ length: 6 }, () => commit(upload.uploadId)));
  const codes = answers.map((answer) => (answer.errors ? String(answer.errors[0]!.extensions?.code) : null));
  assert.equal(codes.filter((code) => code === null).length, 1, JSON.stringify(codes));
  assert.deepEqual(
    codes.filter((code) => code !== null),
    Array(5).fill("NOT_FOUND"),
  );
  assert.equal(await indexState(upload.uploadId), null);
});

test("with Redis down the gateway's sweeps are postponed and logged, the process keeps serving, and they resume", async () => {
  const redisStack = await privateStack(["redis"]);
  const lines: string[] = [];
  const logger = createLogger({ logLevel: "info" }, { write: (line: string) => void lines.push(line) });
  const lonely = await startGateway({ ...env, REDIS_URL: redisStack.env.REDIS_URL }, overrides, { logger });
  const postponedByRedis = () =>
    lines.filter((line) => {
      const entry = JSON.parse(line) as { msg: string; store?: string };
      return entry.msg === "upload sweep postponed" && entry.store === "redis";
    }).length;
  try {
    await redisStack.stopServer("redis");
    await eventually(() => postponedByRedis() >= 2, "two sweeps postponed", 60_000);
    assert.equal((await fetch(`${lonely.url}/health`)).status, 200, "the process keeps serving");
    await redisStack.startServer("redis");
    const sweep = await sweepExpiredUploads({ config: lonely.config, stores: lonely.app.stores });
    assert.equal(sweep.failure, null, "the next sweep runs again");
    const redisAddress = new URL(redisStack.env.REDIS_URL).host;
    assert.ok(
      lines.every((line) => !line.includes(redisAddress)),
      "no store address in a log line",
    );
  } finally {
    await lonely.close();
    await redisStack.close();
  }
});

/** A local port nothing listens on: connecting to it is refused at once. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test("a commit whose task cannot be queued (Kafka unreachable) puts the upload back: the same commit succeeds later", async () => {
  const noQueue = await startGateway(env, {
    ...overrides,
    MONGODB_DB: gw.config.mongo.database,
    MINIO_BUCKET_NAME: gw.config.s3.bucket,
    KAFKA_BROKER_URL: `127.0.0.1:${await closedPort()}`,
  });
  try {
    const upload = await uploadWithoutCommit(1);
    const failed = await commit(upload.uploadId, noQueue);
    assert.equal(failed.errors?.[0]?.extensions?.code, "UPSTREAM_UNAVAILABLE", JSON.stringify(failed));
    assert.equal(await indexState(upload.uploadId), "due", "back in the index, for a retry or the sweep");
    assert.deepEqual(await existing(upload.objectKeys), upload.objectKeys, "the objects stay for the retry");
    const retried = await commit(upload.uploadId);
    assert.equal(retried.errors, undefined, JSON.stringify(retried.errors));
    assert.equal(await indexState(upload.uploadId), null);
  } finally {
    await noQueue.app.stop();
  }
});

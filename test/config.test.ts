import assert from "node:assert/strict";
import { test } from "node:test";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { ConfigError, loadConfig } from "../src/config.js";

const required = { SECRET_KEY: "s", MINIO_ACCESS_KEY: "a", MINIO_SECRET_KEY: "b" };

test("defaults are the seed's", () => {
  const config = loadConfig(required);
  assert.equal(config.mongo.database, "layra");
  assert.deepEqual([config.mongo.minPoolSize, config.mongo.maxPoolSize], [10, 50]);
  assert.deepEqual(
    [config.milvus.dim, config.milvus.hnswM, config.milvus.efConstruction, config.milvus.metricType],
    [128, 32, 500, "IP"],
  );
  assert.deepEqual(config.redis.db, { token: 0, task: 1, lock: 2, cache: 3 });
  assert.equal(config.s3.bucket, "layra-bucket");
  assert.equal(config.auth.algorithm, "HS256");
});

test("development binds loopback unless HOST says otherwise; production binds every interface", () => {
  assert.equal(loadConfig(required).host, "127.0.0.1");
  assert.equal(loadConfig({ ...required, NODE_ENV: "development" }).host, "127.0.0.1");
  assert.equal(loadConfig({ ...required, NODE_ENV: "production" }).host, "0.0.0.0");
  assert.equal(loadConfig({ ...required, NODE_ENV: "development", HOST: "0.0.0.0" }).host, "0.0.0.0");
});

test("ask's question bound follows the search query bound unless set, and may not exceed it", () => {
  assert.equal(loadConfig({ ...required, SEARCH_MAX_QUERY_CHARS: "200" }).ask.maxQuestionChars, 200);
  assert.equal(loadConfig({ ...required, ASK_MAX_QUESTION_CHARS: "100" }).ask.maxQuestionChars, 100);
  assert.throws(
    () => loadConfig({ ...required, SEARCH_MAX_QUERY_CHARS: "200", ASK_MAX_QUESTION_CHARS: "300" }),
    /ASK_MAX_QUESTION_CHARS: must not exceed SEARCH_MAX_QUERY_CHARS/,
  );
});

test("a stock LAYRA .env is understood: host:port Mongo URL with root user, bare Redis host", () => {
  const config = loadConfig({
    ...required,
    MONGODB_URL: "mongodb:27017",
    MONGODB_ROOT_USERNAME: "mongouser",
    MONGODB_ROOT_PASSWORD: "p@ss word",
    MONGODB_DB: "mongodb",
    REDIS_URL: "redis:6379",
    MINIO_BUCKET_NAME: "minio-file",
    MINIO_PUBLIC_URL: "http://192.168.1.5",
    MILVUS_HNSW_M: "16",
  });
  assert.equal(config.mongo.url, "mongodb://mongouser:p%40ss%20word@mongodb:27017");
  assert.equal(config.redis.url, "redis://redis:6379");
  assert.equal(config.s3.publicEndpoint.host, "192.168.1.5");
  assert.equal(config.milvus.hnswM, 16);
});

test("every bad or missing value is reported, one line each", () => {
  assert.throws(
    () => loadConfig({ PORT: "http", MILVUS_DIM: "-1", MINIO_URL: "not a url" }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      const fields = error.problems.map((line) => line.split(":")[0]);
      for (const name of ["PORT", "MILVUS_DIM", "MINIO_URL", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "SECRET_KEY"]) {
        assert.ok(fields.includes(name), `${name} is reported in ${error.problems.join(" | ")}`);
      }
      return true;
    },
  );
});

test("cross-field rules are checked once the fields are valid", () => {
  assert.throws(
    () => loadConfig({ ...required, REDIS_CACHE_DB: "0" }),
    /REDIS_CACHE_DB: the four Redis databases must be distinct/,
  );
  assert.throws(
    () => loadConfig({ ...required, MONGODB_MIN_POOL_SIZE: "60" }),
    /MONGODB_MIN_POOL_SIZE: must not exceed MONGODB_POOL_SIZE/,
  );
});

test("progress settings: defaults, and bad values are refused", () => {
  assert.deepEqual(loadConfig(required).progress, { mode: "auto", pollIntervalMs: 500, missingKeyWaitMs: 5000 });
  assert.equal(loadConfig({ ...required, PROGRESS_MODE: "poll" }).progress.mode, "poll");
  assert.throws(
    () => loadConfig({ ...required, PROGRESS_MODE: "pubsub" }),
    (error: unknown) => error instanceof ConfigError && /PROGRESS_MODE/.test(error.message),
  );
  assert.throws(() => loadConfig({ ...required, PROGRESS_POLL_INTERVAL_MS: "10" }), /PROGRESS_POLL_INTERVAL_MS/);
});

test("search settings: LAYRA's stage-1 limit of 50 by default, ef never below the limit, Milvus's caps enforced", () => {
  assert.deepEqual(loadConfig(required).search, {
    candidateLimit: 50,
    certifyMaxLimit: 4096,
    certifyMaxPages: 4000,
    ef: 64,
    maxTopK: 100,
    maxQueryVectors: 1024,
    maxQueryChars: 2000,
    queryWindow: 16384,
    cacheBytes: 256 * 1024 * 1024,
  });
  assert.equal(loadConfig({ ...required, SEARCH_CACHE_BYTES: "0" }).search.cacheBytes, 0);
  assert.throws(() => loadConfig({ ...required, SEARCH_CACHE_BYTES: "-1" }), /SEARCH_CACHE_BYTES/);
  assert.equal(loadConfig({ ...required, SEARCH_CANDIDATE_LIMIT: "200", SEARCH_EF: "64" }).search.ef, 200);
  assert.throws(() => loadConfig({ ...required, SEARCH_QUERY_WINDOW: "20000" }), /SEARCH_QUERY_WINDOW/);
  assert.throws(() => loadConfig({ ...required, SEARCH_CANDIDATE_LIMIT: "0" }), /SEARCH_CANDIDATE_LIMIT/);
});

test("every store URL is validated, one line per problem, and no password is ever printed", async () => {
  const secret = "hunter2-s3cret";
  const bad = {
    MONGODB_URL: `mongodb://root:${secret}@mongo:27017:x`,
    REDIS_URL: `redis://:${secret}@redis:notaport`,
    MILVUS_URI: `ftp://u:${secret}@milvus`,
    MINIO_URL: `http://u:${secret}@`,
    MODEL_SERVER_URL: "model:8005",
  };
  assert.throws(
    () => loadConfig({ ...bad, MINIO_ACCESS_KEY: "a", MINIO_SECRET_KEY: "b", SECRET_KEY: "c" }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(error.problems.map((line) => line.split(":")[0]).sort(), Object.keys(bad).sort());
      assert.equal(error.message.includes(secret), false, error.message);
      return true;
    },
  );
  // The production entry prints the same lines, no stack trace, and exits 1.
  const run = promisify(execFile);
  const failed = await run(process.execPath, ["--import", "tsx", "src/main.ts"], {
    env: { PATH: process.env.PATH, ...bad, MINIO_ACCESS_KEY: "a", MINIO_SECRET_KEY: "b", SECRET_KEY: "c" },
  }).catch((error: { code: number; stdout: string; stderr: string }) => error);
  assert.equal((failed as { code?: number }).code, 1);
  const { stderr } = failed as { stderr: string };
  assert.equal(stderr.includes(secret), false, stderr);
  assert.doesNotMatch(stderr, /^\s+at /m, "no stack trace");
  assert.equal(stderr.trim().split("\n").length, 1 + Object.keys(bad).length, stderr);
});

test("upload sweep settings: a minute's interval by default, 0 turns the gateway's sweep off, bad values are refused", () => {
  assert.deepEqual(loadConfig(required).uploadSweep, {
    commitGraceSeconds: 300,
    intervalMs: 60_000,
    batchSize: 100,
    claimMs: 300_000,
  });
  assert.equal(loadConfig({ ...required, UPLOAD_SWEEP_INTERVAL_SECONDS: "0" }).uploadSweep.intervalMs, 0);
  assert.throws(
    () => loadConfig({ ...required, UPLOAD_SWEEP_BATCH: "0", UPLOAD_SWEEP_RETRY_SECONDS: "0" }),
    (error: unknown) =>
      error instanceof ConfigError &&
      error.problems.some((p) => p.startsWith("UPLOAD_SWEEP_BATCH")) &&
      error.problems.some((p) => p.startsWith("UPLOAD_SWEEP_RETRY_SECONDS")),
  );
});

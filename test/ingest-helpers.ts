// Shared pieces of the upload and ingestion tests: a topic and group of the test's own, sample
// documents (a PDF drawn with pdf-lib, a PNG, a broken PDF), the multipart request, and workers
// in this process or as child processes (the crash test kills one with SIGKILL).
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { PDFDocument, StandardFonts } from "pdf-lib";
import { pagePng } from "../dev/png.js";
import type { Config } from "../src/config.js";
import { createKafkaStore } from "../src/stores/kafka.js";
import { buildWorker, type Worker } from "../src/worker-app.js";
import { testConfig, type GraphQLResponse, type TestGateway } from "./helpers.js";

/** Settings for a test file's gateway and workers: its own topic and group, small renders. */
export function ingestOverrides(extra: Record<string, string> = {}): Record<string, string> {
  const suffix = randomBytes(4).toString("hex");
  return {
    KAFKA_TOPIC: `t_tasks_${suffix}`,
    KAFKA_UNHANDLED_TOPIC: `t_unhandled_${suffix}`,
    KAFKA_GROUP_ID: `t_group_${suffix}`,
    EMBEDDING_IMAGE_DPI: "24",
    EMBEDDING_BATCH_PAGES: "2",
    WORKER_PORT: "0",
    INGEST_MAX_ATTEMPTS: "2",
    ...extra,
  };
}

export async function createTopic(config: Config, partitions: number): Promise<void> {
  const kafka = createKafkaStore(config);
  try {
    await kafka.ensureTopic(config.kafka.topic, partitions);
  } finally {
    await kafka.close();
  }
}

/** A PDF with one page per text, drawn with pdf-lib (each page renders to a different image). */
export async function samplePdf(texts: string[]): Promise<Buffer> {
  const pdf = await PDFDocument.create();
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  for (const [index, text] of texts.entries()) {
    const page = pdf.addPage([200, 280]);
    page.drawText(text, { x: 20, y: 200 - index * 30, size: 18, font });
    page.drawRectangle({ x: 20 + index * 40, y: 40, width: 30, height: 30 });
  }
  return Buffer.from(await pdf.save());
}

export const samplePng = (text = "a picture") => pagePng({ "layra-text": text }, 90);
/** Named like a PDF, starts like one, and is broken past the header. */
export const brokenPdf = () => Buffer.from("%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage without xref\n");

export interface UploadPart {
  name: string;
  type: string;
  bytes: Buffer;
}

/** A GraphQL multipart request (operations, map, then the files), with the CSRF header. */
export async function multipartRequest<T>(
  gateway: TestGateway,
  token: string,
  query: string,
  variables: Record<string, unknown>,
  files: UploadPart[],
  filesVariable = "files",
): Promise<GraphQLResponse<T>> {
  const form = new FormData();
  form.append(
    "operations",
    JSON.stringify({ query, variables: { ...variables, [filesVariable]: files.map(() => null) } }),
  );
  form.append(
    "map",
    JSON.stringify(Object.fromEntries(files.map((_, i) => [String(i), [`variables.${filesVariable}.${i}`]]))),
  );
  files.forEach((file, i) =>
    form.append(String(i), new Blob([new Uint8Array(file.bytes)], { type: file.type }), file.name),
  );
  const response = await fetch(`${gateway.url}/graphql`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "x-graphql-csrf": "1" },
    body: form,
  });
  return { status: response.status, ...((await response.json()) as object) };
}

export const UPLOAD_FILES = `mutation Upload($knowledgeBaseId: String!, $files: [Upload!]!) {
  uploadFiles(knowledgeBaseId: $knowledgeBaseId, files: $files) { taskId knowledgeBaseId files { id filename url } }
}`;

export interface UploadTaskResult {
  taskId: string;
  knowledgeBaseId: string;
  files: { id: string; filename: string; url: string }[];
}

/** The gateway's database and bucket, so workers ingest where it reads. */
const sameStores = (gateway: TestGateway) => ({
  MONGODB_DB: gateway.config.mongo.database,
  MINIO_BUCKET_NAME: gateway.config.s3.bucket,
});

/** Workers in this process for the gateway's stores, stopped by the returned function. */
export async function startWorkers(
  gateway: TestGateway,
  env: Record<string, string>,
  overrides: Record<string, string>,
  count = 1,
) {
  const workers: Worker[] = [];
  const metricsUrls: string[] = [];
  for (let i = 0; i < count; i++) {
    const worker = buildWorker(testConfig(env, { ...overrides, ...sameStores(gateway) }));
    metricsUrls.push(await worker.start());
    workers.push(worker);
  }
  return Object.assign(() => Promise.all(workers.map((worker) => worker.stop())), { metricsUrls });
}

/** `npm run worker` as a child process (what production runs), with the test's settings. */
export function spawnWorker(
  gateway: TestGateway,
  env: Record<string, string>,
  overrides: Record<string, string>,
): ChildProcess {
  const root = new URL("..", import.meta.url).pathname;
  const child = spawn(process.execPath, ["--import", "tsx", "src/worker.ts"], {
    cwd: root,
    env: {
      ...process.env,
      NODE_ENV: "test",
      SECRET_KEY: "unused-by-the-worker",
      LOG_LEVEL: "warn",
      ...env,
      ...overrides,
      ...sameStores(gateway),
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  return child;
}

/** Polls `check` until it answers a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 180_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

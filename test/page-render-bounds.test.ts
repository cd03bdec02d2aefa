// Rendering within bounds (docs/ingestion.md, "Rendering bounds"), with hostile PDFs made here: a 1 KB
// file of 130- and 210-inch pages renders under the pixel cap and never as a blank 1x1 page; a file over
// the page cap and a page that renders too long fail with their reason and leave nothing behind; the
// page count is known before any page is rendered and keeps the task alive; a worker stopped or killed
// in the middle of a render leaves no renderer running and no folder once the next one has started.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Redis } from "ioredis";
import { PDFDocument, PDFName } from "pdf-lib";
import sharp from "sharp";
import { loadConfig } from "../src/config.js";
import { createRenderer, PageLimitExceeded } from "../src/resolvers/ingestion/page-renderer.js";
import { FOLDER_PREFIX } from "../src/resolvers/ingestion/render-process.js";
import { eventually, gatewayForFile, redisClient, TEST_SECRET } from "./helpers.js";
import {
  createTopic,
  ingestOverrides,
  multipartRequest,
  samplePdf,
  spawnWorker,
  startWorkers,
  UPLOAD_FILES,
  type UploadTaskResult,
} from "./ingest-helpers.js";

const overrides = ingestOverrides({ KAFKA_SESSION_TIMEOUT_MS: "6000", RENDER_MAX_PAGES: "3" });
const state = gatewayForFile(overrides);
let token: string;
let knowledgeBaseId: string;
let taskDb: Redis;

/** A renderer with the test's settings (no store is needed to render). */
const renderer = (settings: Record<string, string> = {}) =>
  createRenderer(
    loadConfig({ SECRET_KEY: TEST_SECRET, MINIO_ACCESS_KEY: "a", MINIO_SECRET_KEY: "b", ...overrides, ...settings }),
  );

/** Pages of the given sizes in points (72 a inch), each with a black square, so no page renders blank. */
async function pdfOfPages(sizes: [number, number][]): Promise<Buffer> {
  const pdf = await PDFDocument.create();
  for (const size of sizes) pdf.addPage(size).drawRectangle({ x: 10, y: 10, width: size[0] / 3, height: size[1] / 3 });
  return Buffer.from(await pdf.save());
}

/** One letter page of 100,000 overlapping filled squares: about 80 KB that take pdftoppm tens of seconds. */
async function slowPdf(): Promise<Buffer> {
  const pdf = await PDFDocument.create();
  const page = pdf.addPage([612, 792]);
  let seed = 1;
  const next = () => (seed = (seed * 16807) % 2147483647) % 500;
  const operators = Array.from({ length: 100_000 }, () => `${next()} ${next()} 300 300 re f`).join("\n");
  page.node.set(PDFName.of("Contents"), pdf.context.register(pdf.context.flateStream(operators)));
  return Buffer.from(await pdf.save());
}

/** The renderer folders under `root` (the worker's temporary directory). */
const renderFolders = async (root = tmpdir()) =>
  (await readdir(root)).filter((name) => name.startsWith(FOLDER_PREFIX)).map((name) => join(root, name));

/**
 * The folder a render of `bytes` in this process made: the one holding them as its source. Folders are
 * named after their process, and only this one's count: a second suite on the machine renders the same
 * PDFs in the same directory at about the same time.
 */
async function folderOf(bytes: Buffer, before: string[]): Promise<string | undefined> {
  const ours = join(tmpdir(), `${FOLDER_PREFIX}${process.pid}.`);
  for (const folder of (await renderFolders()).filter((name) => name.startsWith(ours) && !before.includes(name))) {
    const source = await readFile(join(folder, "source.pdf")).catch(() => null);
    if (source?.equals(bytes)) return folder;
  }
  return undefined;
}

/** Process ids whose command line mentions `text` (a folder the process works in). */
async function processesMentioning(text: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const command = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (command.includes(text)) found.push(Number(entry));
  }
  return found;
}

describe("the renderer", () => {
  test("a 1 KB PDF of 130- and 210-inch pages: every page under the pixel cap, none a blank 1x1", async () => {
    const pdf = await pdfOfPages([
      [9360, 9360],
      [9360, 9360],
      [15120, 15120],
    ]);
    assert.ok(pdf.length < 2048);
    const pages = await renderer({ RENDER_MAX_PAGES: "10", RENDER_MAX_PAGE_PIXELS: "1000000" }).render(pdf, "a.pdf");
    try {
      assert.equal(pages.pageCount, 3);
      for (let index = 0; index < 3; index++) {
        const png = sharp(await pages.page(index));
        const { width, height } = await png.metadata();
        assert.ok(width * height <= 1_000_000, `page ${index + 1}: ${width}x${height} is within the cap`);
        assert.ok(width * height > 900_000, `page ${index + 1}: ${width}x${height} is scaled to the cap, not blank`);
        const { channels } = await png.stats();
        assert.ok(channels[0]!.min < channels[0]!.max, `page ${index + 1} shows its square`);
      }
    } finally {
      await pages.dispose();
    }
  });

  test("the page count is known before any page is rendered; pages then render at the configured DPI", async () => {
    const pdf = await pdfOfPages([
      [144, 216],
      [216, 144],
    ]);
    const existing = await renderFolders();
    const pages = await renderer().render(pdf, "b.pdf");
    try {
      assert.equal(pages.pageCount, 2);
      const folder = await folderOf(pdf, existing);
      assert.ok(folder, "the render has its folder");
      assert.deepEqual(
        (await readdir(folder)).filter((name) => name.endsWith(".png")),
        [],
        "no page rendered yet",
      );
      // EMBEDDING_IMAGE_DPI 24: 2 x 3 inches are 48 x 72 pixels.
      const sizes = await Promise.all([0, 1].map(async (index) => sharp(await pages.page(index)).metadata()));
      assert.deepEqual(
        sizes.map(({ width, height }) => [width, height]),
        [
          [48, 72],
          [72, 48],
        ],
      );
    } finally {
      await pages.dispose();
    }
    assert.equal(await folderOf(pdf, existing), undefined, "the folder is removed");
  });

  test("more pages than RENDER_MAX_PAGES: refused before rendering, with the count and the limit", async () => {
    const pdf = await samplePdf(["1", "2", "3", "4"]);
    const existing = await renderFolders();
    await assert.rejects(renderer().render(pdf, "c.pdf"), (error: unknown) => {
      assert.ok(error instanceof PageLimitExceeded, String(error));
      assert.equal(error.message, "the PDF has 4 pages, more than the 3 a file may have");
      return true;
    });
    assert.equal(await folderOf(pdf, existing), undefined, "nothing left behind");
  });

  test("a page that renders past its time limit fails with the reason; its renderer is killed", async () => {
    const pdf = await slowPdf();
    const existing = await renderFolders();
    const pages = await renderer({ RENDER_PAGE_TIMEOUT_MS: "1500" }).render(pdf, "d.pdf");
    const folder = (await folderOf(pdf, existing))!;
    try {
      await assert.rejects(pages.page(0), /^Error: page 1 took longer than 1500 ms to render$/);
      assert.deepEqual(await processesMentioning(folder), [], "no renderer runs on");
    } finally {
      await pages.dispose();
    }
    assert.equal(await folderOf(pdf, existing), undefined, "nothing left behind");
  });

  test("disposing of a render in progress kills its renderer at once", async () => {
    const pdf = await slowPdf();
    const existing = await renderFolders();
    const pages = await renderer().render(pdf, "e.pdf");
    const folder = (await folderOf(pdf, existing))!;
    const reading = pages.page(0);
    reading.catch(() => {});
    await eventually(async () => (await processesMentioning(folder)).length > 0, "the renderer runs");
    await pages.dispose();
    await assert.rejects(reading);
    assert.deepEqual(await processesMentioning(folder), [], "no renderer runs on");
    assert.equal(await folderOf(pdf, existing), undefined, "nothing left behind");
  });
});

describe("through the worker", () => {
  before(async () => {
    const gateway = await state.ready;
    taskDb = redisClient(gateway.config, "task");
    await createTopic(gateway.config, 1);
    token = await gateway.token("ann");
    const created = await gateway.query<{ createKnowledgeBase: { knowledgeBaseId: string } }>(
      `mutation { createKnowledgeBase(name: "render bounds") { knowledgeBaseId } }`,
      { token },
    );
    assert.equal(created.errors, undefined);
    knowledgeBaseId = created.data!.createKnowledgeBase.knowledgeBaseId;
  });
  after(() => taskDb?.disconnect());

  async function upload(files: { name: string; bytes: Buffer }[]): Promise<UploadTaskResult> {
    const uploaded = await multipartRequest<{ uploadFiles: UploadTaskResult }>(
      state.gateway,
      token,
      UPLOAD_FILES,
      { knowledgeBaseId },
      files.map((file) => ({ ...file, type: "application/pdf" })),
    );
    assert.equal(uploaded.errors, undefined, JSON.stringify(uploaded.errors));
    return uploaded.data!.uploadFiles;
  }

  const taskHash = (taskId: string) => taskDb.hgetall(`task:${taskId}`);
  const ended = (taskId: string) =>
    eventually(
      async () => ["completed", "failed"].includes((await taskHash(taskId)).status ?? ""),
      "the task ends",
      180_000,
    );

  async function objectKeys(): Promise<string[]> {
    const { s3 } = state.gateway.app.stores;
    const keys: string[] = [];
    for await (const item of s3.client.listObjectsV2(s3.bucket, "", true)) keys.push(String(item.name));
    return keys;
  }

  test("a file over the page cap fails naming the limit, leaves nothing; the other file completes", async () => {
    const stopWorkers = await startWorkers(state.gateway, state.env, overrides);
    try {
      const task = await upload([
        { name: "over.pdf", bytes: await samplePdf(["1", "2", "3", "4"]) },
        { name: "fine.pdf", bytes: await samplePdf(["1", "2"]) },
      ]);
      await ended(task.taskId);
      const hash = await taskHash(task.taskId);
      assert.equal(hash.status, "failed");
      assert.equal(hash.processed, "1");
      assert.equal(
        hash.message,
        "File processing failed: over.pdf: the PDF has 4 pages, more than the 3 a file may have",
      );
      const files = state.gateway.app.stores.mongo.files;
      assert.equal(await files.exists(task.files[0]!.id), false);
      assert.equal(await files.exists(task.files[1]!.id), true);
      assert.deepEqual(
        (await objectKeys()).filter((key) => key.startsWith("ann_over_")),
        [],
        "no original, no page of the refused file",
      );
    } finally {
      await stopWorkers();
    }
  });

  test("a task whose pages come in is kept alive: a short remaining lifetime is extended", async () => {
    // No worker runs while the task is queued, so its lifetime can be cut short before any progress.
    const task = await upload([{ name: "long.pdf", bytes: await samplePdf(["1", "2", "3"]) }]);
    assert.equal(await taskDb.expire(`task:${task.taskId}`, 60), 1);
    const stopWorkers = await startWorkers(state.gateway, state.env, overrides);
    try {
      await ended(task.taskId);
      const hash = await taskHash(task.taskId);
      assert.equal(hash.status, "completed", hash.message);
      assert.equal(hash.file_pages_total, "3");
      assert.ok((await taskDb.ttl(`task:${task.taskId}`)) > 600, "the task lives on past the cut");
    } finally {
      await stopWorkers();
    }
  });

  describe("worker processes stopped in the middle of a render", () => {
    let workerTmp: string;
    let task: UploadTaskResult;
    const children: ChildProcess[] = [];
    const spawnIn = (settings: Record<string, string> = {}) => {
      const child = spawnWorker(state.gateway, state.env, { ...overrides, TMPDIR: workerTmp, ...settings });
      children.push(child);
      return child;
    };
    const exited = async (child: ChildProcess, what: string) => {
      if (child.exitCode === null && child.signalCode === null)
        await Promise.race([
          once(child, "exit"),
          new Promise((_, reject) => setTimeout(() => reject(new Error(`${what} did not exit`)), 30_000).unref()),
        ]);
    };
    const rendering = () =>
      eventually(async () => (await processesMentioning(workerTmp)).length > 0, "a renderer runs", 120_000);

    before(async () => {
      workerTmp = await mkdtemp(join(tmpdir(), "render-bounds-worker-"));
    });
    after(async () => {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      for (const pid of await processesMentioning(workerTmp)) process.kill(pid, "SIGKILL");
      await rm(workerTmp, { recursive: true, force: true });
    });

    test("SIGTERM: the worker kills its renderer, removes its folder, and leaves the file unfinished", async () => {
      const first = spawnIn();
      task = await upload([{ name: "slow.pdf", bytes: await slowPdf() }]);
      await rendering();
      first.kill("SIGTERM");
      await exited(first, "the worker");
      assert.deepEqual(await processesMentioning(workerTmp), [], "no renderer runs on");
      assert.deepEqual(await renderFolders(workerTmp), [], "no folder left");
      const hash = await taskHash(task.taskId);
      assert.equal(hash.status, "processing", "the file is neither done nor failed");
      assert.equal(hash.processed, "0");
      assert.equal(hash.failed, undefined);
    });

    test("SIGKILL: the next worker kills the orphaned renderer and removes its folder, then fails the file on time", async () => {
      const second = spawnIn();
      await rendering();
      const orphans = await processesMentioning(workerTmp);
      second.kill("SIGKILL");
      await exited(second, "the killed worker");
      assert.deepEqual(await processesMentioning(workerTmp), orphans, "the renderer outlives its worker");
      const [orphanFolder] = await renderFolders(workerTmp);
      assert.ok(orphanFolder, "and so does its folder");

      const third = spawnIn({ RENDER_PAGE_TIMEOUT_MS: "2000" });
      await eventually(
        async () =>
          !(await renderFolders(workerTmp)).includes(orphanFolder) &&
          (await processesMentioning(workerTmp)).every((pid) => !orphans.includes(pid)),
        "the orphan and its folder are gone",
        120_000,
      );
      await ended(task.taskId);
      const hash = await taskHash(task.taskId);
      assert.equal(hash.status, "failed");
      assert.equal(hash.message, "File processing failed: slow.pdf: page 1 took longer than 2000 ms to render");
      third.kill("SIGTERM");
      await exited(third, "the last worker");
      assert.deepEqual(await renderFolders(workerTmp), [], "no folder left");
    });
  });
});

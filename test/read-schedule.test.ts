// The request's read schedule (src/lib/read-schedule.ts): when DataLoader batches go out. The reads
// here are promises the test settles itself, so nothing depends on timing. No store is needed.
import assert from "node:assert/strict";
import { test } from "node:test";
import DataLoader from "dataloader";
import { ReadSchedule } from "../src/lib/read-schedule.js";

/** A read the test settles by hand. */
function heldRead<T>() {
  let settle!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (settle = resolve));
  return { promise, settle };
}

/** A loader that records its batches and answers each key with itself. */
function recordingLoader(reads: ReadSchedule, stage: number, batches: string[][]) {
  return new DataLoader<string, string>(
    async (keys) => {
      batches.push([...keys]);
      return keys;
    },
    { batchScheduleFn: reads.batchesOf(stage) },
  );
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

test("a batch waits for the request's reads in flight: keys asked for after one settles join it", async () => {
  const reads = new ReadSchedule();
  const batches: string[][] = [];
  const loader = recordingLoader(reads, 0, batches);
  const first = heldRead<string>();
  const second = heldRead<string>();
  const tracked = [reads.track(() => first.promise), reads.track(() => second.promise)];
  const a = loader.load("a");
  // What a resolver fed by the first read asks for.
  const b = tracked[0]!.then(() => loader.load("b"));
  first.settle("one");
  await tracked[0];
  await turn();
  assert.deepEqual(batches, [], "the second read is still in flight");
  const c = tracked[1]!.then(() => loader.load("c"));
  second.settle("two");
  assert.deepEqual(await Promise.all([a, b, c]), ["a", "b", "c"]);
  assert.deepEqual(batches, [["a", "b", "c"]]);
});

test("a later stage goes out after the earlier stage's batch and its read, with the keys that read led to", async () => {
  const reads = new ReadSchedule();
  const batches: string[][] = [];
  const files = recordingLoader(reads, 1, batches);
  const read = heldRead<string>();
  const knowledgeBases = new DataLoader<string, string>(
    async (keys) => {
      batches.push([...keys]);
      await reads.track(() => read.promise);
      return keys;
    },
    { batchScheduleFn: reads.batchesOf(0) },
  );
  const early = files.load("file of a listed base");
  const late = knowledgeBases.load("temp base").then(() => files.load("uploaded file"));
  while (batches.length === 0) await turn();
  assert.deepEqual(batches, [["temp base"]], "the knowledge-base batch goes first, the files wait");
  read.settle("read");
  assert.deepEqual(await Promise.all([early, late]), ["file of a listed base", "uploaded file"]);
  assert.deepEqual(batches, [["temp base"], ["file of a listed base", "uploaded file"]]);
});

test("with no read in flight a batch goes out, and a failed read still lets the next batch go", async () => {
  const reads = new ReadSchedule();
  const batches: string[][] = [];
  const loader = recordingLoader(reads, 0, batches);
  assert.equal(await loader.load("alone"), "alone");
  await assert.rejects(
    reads.track(() => Promise.reject(new Error("store down"))),
    /store down/,
  );
  await assert.rejects(
    reads.track(() => {
      throw new Error("thrown at once");
    }),
    /thrown at once/,
  );
  assert.equal(await loader.load("after"), "after");
  assert.deepEqual(batches, [["alone"], ["after"]]);
});

test("a turn at a stage comes after the earlier stage's batch and its read, before the later stage's batch", async () => {
  const reads = new ReadSchedule();
  const order: string[] = [];
  const read = heldRead<string>();
  const knowledgeBases = new DataLoader<string, string>(
    async (keys) => {
      order.push("knowledge bases");
      await reads.track(() => read.promise);
      order.push("knowledge bases read");
      return keys;
    },
    { batchScheduleFn: reads.batchesOf(0) },
  );
  const files = new DataLoader<string, string>(
    async (keys) => {
      order.push(`files ${keys.join(" ")}`);
      return keys;
    },
    { batchScheduleFn: reads.batchesOf(2) },
  );
  const kb = knowledgeBases.load("kb");
  const early = files.load("a");
  // A read between the stages, and a file key it leads to.
  const late = reads.turn(1).then(() => {
    order.push("turn");
    return files.load("b");
  });
  await turn();
  read.settle("done");
  assert.deepEqual(await Promise.all([kb, early, late]), ["kb", "a", "b"]);
  assert.deepEqual(order, ["knowledge bases", "knowledge bases read", "turn", "files a b"]);
});

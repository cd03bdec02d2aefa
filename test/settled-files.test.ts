// The settled files cache (src/lib/settled-files.ts): a base's entries follow its refs, the whole
// cache stays within its pages, least recently searched bases leaving first, and one settling
// check runs per base at a time.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SettledFiles } from "../src/lib/settled-files.js";

const file = (fileId: string, pages: number) => ({
  file_id: fileId,
  images: Array.from({ length: pages }, (_, i) => i),
});

test("a base's settled files come back in the order asked, the rest as unsettled, and files no longer refed are dropped", () => {
  const cache = new SettledFiles(100);
  cache.settle("kb", [file("a", 3), file("b", 4)]);
  const { settled, unsettled } = cache.lookup("kb", ["b", "c", "a"]);
  assert.deepEqual(
    settled.map((doc) => doc.file_id),
    ["b", "a"],
  );
  assert.deepEqual(unsettled, ["c"]);
  assert.deepEqual(cache.lookup("other", ["a"]), { settled: [], unsettled: ["a"] }, "another base's files are its own");
  assert.equal(cache.stats().pages, 7);
  // b's ref is gone (the file is being deleted): it leaves the cache and its pages with it.
  assert.deepEqual(
    cache.lookup("kb", ["a"]).settled.map((doc) => doc.file_id),
    ["a"],
  );
  assert.equal(cache.stats().pages, 3);
  assert.deepEqual(cache.lookup("kb", ["a", "b"]).unsettled, ["b"], "a dropped file is read again");
  cache.forget("kb");
  assert.deepEqual(cache.stats(), { bases: 0, pages: 0, maxPages: 100 });
});

test("past its pages the least recently searched bases leave first; a file settled again is counted once", () => {
  const cache = new SettledFiles(10);
  cache.settle("old", [file("o", 4)]);
  cache.settle("recent", [file("r", 4)]);
  cache.lookup("old", ["o"]);
  cache.settle("recent", [file("r", 4)]);
  assert.equal(cache.stats().pages, 8, "settling a file twice counts its pages once");
  cache.settle("new", [file("n", 3)]);
  assert.deepEqual(cache.lookup("recent", ["r"]).unsettled, ["r"], "the least recently searched base left");
  assert.deepEqual(cache.lookup("old", ["o"]).unsettled, [], "the base searched since stayed");
  assert.equal(cache.stats().pages, 7);
  cache.settle("huge", [file("h", 11)]);
  assert.ok(cache.stats().pages <= 10, `a base larger than the cache is not kept: ${cache.stats().pages}`);
});

test("one settling check per base at a time; a failed one lets the next run", async () => {
  const cache = new SettledFiles(10);
  let runs = 0;
  let release = () => {};
  const blocked = new Promise<void>((resolve) => (release = resolve));
  cache.checks.start("kb", async () => {
    runs++;
    await blocked;
    throw new Error("milvus down");
  });
  cache.checks.start("kb", async () => void runs++);
  cache.checks.start("other", async () => void runs++);
  assert.equal(runs, 2, "the second check of kb did not start while the first ran");
  release();
  await cache.checks.idle();
  cache.checks.start("kb", async () => void runs++);
  await cache.checks.idle();
  assert.equal(runs, 3);
});

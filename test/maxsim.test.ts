import assert from "node:assert/strict";
import { test } from "node:test";
import { MaxSimScores, toMatrix } from "../src/lib/maxsim.js";
import { CodeBounds, encodePage, mayEnterTopK, pageCodeBytes } from "../src/lib/page-codes.js";
import { readFileSync } from "node:fs";
import { CODE_SCAN_WASM } from "../src/lib/code-scan-wasm.js";
import { compileCodeScan } from "../scripts/code-scan-compiler.js";
import { BOUND_SLACK_PER_TERM, entryFloor, stageOneBounds } from "../src/lib/threshold.js";

test("MaxSim sums, over query vectors, the best inner product with any page vector, whatever the windows", () => {
  const scores = new MaxSimScores(
    toMatrix(
      [
        [1, 0, 0],
        [0, 1, 0],
      ],
      3,
    ),
    3,
  );
  scores.add(
    ["a", "b"],
    toMatrix(
      [
        [0.5, 0.5, 0],
        [-0.5, -0.25, 0],
      ],
      3,
    ),
  );
  scores.add(
    ["a", "a"],
    toMatrix(
      [
        [0.9, 0, 0.1],
        [-1, 0.2, 0],
      ],
      3,
    ),
  );
  const result = scores.scores();
  assert.ok(Math.abs(result.get("a")! - (0.9 + 0.5)) < 1e-6);
  // Negative best matches count too: the score is LAYRA's raw sum, not clamped.
  assert.ok(Math.abs(result.get("b")! - (-0.5 - 0.25)) < 1e-6);
  assert.deepEqual([...result.keys()].sort(), ["a", "b"]);
});

test("scores are bit for bit those of one query vector at a time, through add() and addPage(), for 1 to 9 query vectors", () => {
  const dim = 128;
  const random = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
  const pages = [3, 17, 1].map((rows) => random(rows * dim));
  for (let queryCount = 1; queryCount <= 9; queryCount++) {
    const query = random(queryCount * dim);
    // The reference: each product summed in dimension order in doubles, the best row per query vector.
    const expected = pages.map((vectors) => {
      let sum = 0;
      for (let q = 0; q < queryCount; q++) {
        let best = -Infinity;
        for (let row = 0; row < vectors.length / dim; row++) {
          let dot = 0;
          for (let k = 0; k < dim; k++) dot += query[q * dim + k]! * vectors[row * dim + k]!;
          best = Math.max(best, dot);
        }
        sum += best;
      }
      return sum;
    });
    const whole = new MaxSimScores(query, dim);
    const byRow = new MaxSimScores(query, dim);
    pages.forEach((vectors, i) => {
      whole.addPage(`p${i}`, vectors);
      byRow.add(
        Array.from({ length: vectors.length / dim }, () => `p${i}`),
        vectors,
      );
    });
    pages.forEach((_, i) => {
      assert.equal(whole.scores().get(`p${i}`), expected[i], `addPage, ${queryCount} query vectors, page ${i}`);
      assert.equal(byRow.scores().get(`p${i}`), expected[i], `add, ${queryCount} query vectors, page ${i}`);
    });
  }
});

test("stage 1's lists bound every page: a listed page by its best rows, an unlisted one by each list's last row", () => {
  const slack = BOUND_SLACK_PER_TERM;
  const lists = [
    [
      { imageId: "a", score: 0.9 },
      { imageId: "a", score: 0.8 },
      { imageId: "b", score: 0.5 },
    ],
    [
      { imageId: "b", score: 0.7 },
      { imageId: "c", score: 0.6 },
      { imageId: "x", score: 0.4 },
    ],
  ];
  const { outside, upper } = stageOneBounds(lists, 3, (page) => page !== "x");
  assert.ok(Math.abs(outside - (0.5 + 0.4 + 2 * slack)) < 1e-12);
  // a: its best row in list 0, list 1's last row; b: in both; c: list 0's last row; x is not listed in Mongo.
  assert.deepEqual([...upper.keys()].sort(), ["a", "b", "c"]);
  assert.ok(Math.abs(upper.get("a")! - (0.9 + 0.4 + 2 * slack)) < 1e-12);
  assert.ok(Math.abs(upper.get("b")! - (0.5 + 0.7 + 2 * slack)) < 1e-12);
  assert.ok(Math.abs(upper.get("c")! - (0.5 + 0.6 + 2 * slack)) < 1e-12);
  // A list shorter than its limit holds every row: no page is outside it.
  assert.equal(stageOneBounds(lists, 4, () => true).outside, -Infinity);
  assert.equal(stageOneBounds(lists, 4, () => true).upper.get("a"), -Infinity);
});

test("the entry floor is the k-th best exact score, or the threshold when higher", () => {
  assert.equal(entryFloor([3, 1, 2], 2, -Infinity), 2);
  assert.equal(entryFloor([3, 1], 3, -Infinity), -Infinity);
  assert.equal(entryFloor([3, 1], 3, 0.5), 0.5);
  assert.equal(entryFloor([3, 1, 2], 1, 5), 5);
});

/** Unit vectors from a seeded generator, and near-copies of a few of them (as repeated patches are). */
/** The pages (named p0, p1, ...) scored exactly and bounded from their codes. */
function scoredBothWays(query: Float32Array, dim: number, pages: Float32Array[]) {
  const exact = new MaxSimScores(query, dim);
  const bounds = new CodeBounds(query, dim);
  pages.forEach((page, p) => {
    exact.addPage(`p${p}`, page);
    bounds.addPage(`p${p}`, encodePage(page, dim));
  });
  return { exact, bounds };
}

function unitVectors(count: number, dim: number, random: () => number): Float32Array {
  const vectors = new Float32Array(count * dim);
  for (let row = 0; row < count; row++) {
    const raw = Array.from({ length: dim }, () => random() - 0.5);
    const norm = Math.hypot(...raw);
    raw.forEach((value, k) => (vectors[row * dim + k] = value / norm));
  }
  return vectors;
}

function seeded(seed: number): () => number {
  let state = seed;
  return () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
}

test("a page's codes bound its exact MaxSim from both sides, tightly, on near-identical, zero and one-hot vectors", () => {
  const dim = 128;
  const random = seeded(3);
  const shared = unitVectors(4, dim, random);
  const pages = Array.from({ length: 60 }, (_, p) => {
    const own = unitVectors(20, dim, random);
    const page = new Float32Array((20 + 4) * dim);
    page.set(own);
    // Every page shows the same patches, moved in the last float bits only: near-ties everywhere.
    for (let i = 0; i < shared.length; i++) page[20 * dim + i] = shared[i]! * (1 + (p % 3) * 1e-7);
    if (p === 0) page.fill(0, 0, dim);
    if (p === 1) page.fill(0, 0, dim).set([1], 0);
    return page;
  });
  const pageBytes = pages[0]!.byteLength;
  const code = encodePage(pages[0]!, dim);
  assert.equal(code.byteLength + 200, pageCodeBytes(24, dim));
  assert.ok(code.byteLength <= pageBytes * 0.28, `${code.byteLength} code bytes for ${pageBytes} float bytes`);
  for (let queryCount = 1; queryCount <= 6; queryCount++) {
    const query = unitVectors(queryCount, dim, random);
    // Half the queries are the shared patches themselves: the bound is tested where ties are.
    if (queryCount % 2 === 0) query.set(shared.subarray(0, dim));
    const { exact, bounds } = scoredBothWays(query, dim, pages);
    for (const [pageId, score] of exact.scores()) {
      const { lower, upper } = bounds.bounds.get(pageId)!;
      assert.ok(
        lower <= score && score <= upper,
        `${queryCount} query vectors, ${pageId}: ${lower} <= ${score} <= ${upper}`,
      );
      assert.ok(upper - lower < 0.03 * queryCount, `${pageId}: a gap of ${upper - lower}`);
    }
  }
});

test("the pages that may enter the top k hold the exact top k, and only pages whose upper bound reaches the k-th lower bound", () => {
  const dim = 128;
  const random = seeded(8);
  const pages = Array.from({ length: 200 }, () => unitVectors(30, dim, random));
  const query = unitVectors(4, dim, random);
  const { exact, bounds } = scoredBothWays(query, dim, pages);
  const ranked = [...exact.scores()].sort((a, b) => b[1] - a[1]);
  for (const k of [1, 10, 50]) {
    const candidates = new Set(mayEnterTopK(bounds.bounds, k, -Infinity));
    for (const [pageId] of ranked.slice(0, k)) assert.ok(candidates.has(pageId), `k ${k}: ${pageId} ruled out`);
    assert.ok(candidates.size < pages.length, `k ${k}: ${candidates.size} of ${pages.length} pages re-scored`);
    const floor = [...bounds.bounds.values()].map((bound) => bound.lower).sort((a, b) => b - a)[k - 1]!;
    for (const [pageId, bound] of bounds.bounds) assert.equal(candidates.has(pageId), bound.upper >= floor, pageId);
  }
  // A threshold above every upper bound leaves nothing to read.
  assert.deepEqual(mayEnterTopK(bounds.bounds, 10, ranked[0]![1] + 1), []);
});

test("codes bound MaxSim at any dimension: rows padded to 16-byte steps, large dimensions without i32 overflow", () => {
  for (const dim of [3, 20, 1000, 4096]) {
    const random = seeded(dim);
    // Components of one sign and the largest codes: the integer sums are as large as they get.
    const pages = [unitVectors(5, dim, random).map(Math.abs), new Float32Array(dim).fill(1)];
    const query = new Float32Array(2 * dim).fill(1);
    query.set(unitVectors(1, dim, random));
    const { exact, bounds } = scoredBothWays(query, dim, pages);
    for (const [pageId, score] of exact.scores()) {
      const { lower, upper } = bounds.bounds.get(pageId)!;
      assert.ok(lower <= score && score <= upper, `dim ${dim}, ${pageId}: ${lower} <= ${score} <= ${upper}`);
      assert.ok(upper - lower < 0.02 * Math.abs(score) + 0.05, `dim ${dim}, ${pageId}: a gap of ${upper - lower}`);
    }
  }
});

test("the committed code-scan kernel is src/lib/code-scan.wat compiled (npm run build:code-scan)", async () => {
  const wat = readFileSync(new URL("../src/lib/code-scan.wat", import.meta.url), "utf8");
  assert.equal(Buffer.from(await compileCodeScan(wat)).toString("base64"), CODE_SCAN_WASM);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { MaxSimScores, toMatrix } from "../src/lib/maxsim.js";
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

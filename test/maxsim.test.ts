import assert from "node:assert/strict";
import { test } from "node:test";
import { MaxSimScores, toMatrix } from "../src/lib/maxsim.js";

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

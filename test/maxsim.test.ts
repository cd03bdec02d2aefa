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

import assert from "node:assert/strict";
import { test } from "node:test";
import { maxSim, toMatrix } from "../src/resolvers/maxsim.js";

test("maxSim sums, over query vectors, the best inner product with any page vector", () => {
  const query = toMatrix([[1, 0, 0], [0, 1, 0]], 3);
  const page = toMatrix([[0.5, 0.5, 0], [0.9, 0, 0.1], [-1, 0.2, 0]], 3);
  assert.ok(Math.abs(maxSim(query, page, 3) - (0.9 + 0.5)) < 1e-6);
  // Negative best matches count too: the score is LAYRA's raw sum, not clamped.
  assert.ok(Math.abs(maxSim(toMatrix([[0, 0, 1]], 3), toMatrix([[0, 0, -0.5]], 3), 3) + 0.5) < 1e-6);
});

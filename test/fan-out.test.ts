// The progress watcher's fan-out (src/live/fan-out.ts): listeners are called a slice at a time with a
// macrotask between slices, in the order changes were added. Pure: no store is needed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SlicedFanOut } from "../src/live/fan-out.js";

const macrotask = () => new Promise((resolve) => setImmediate(resolve));

test("the first slice is called at once, the rest one slice per macrotask", async () => {
  const fanOut = new SlicedFanOut(2);
  const called: number[] = [];
  fanOut.add(new Set([1, 2, 3, 4, 5]), (n) => called.push(n));
  assert.deepEqual(called, [1, 2]);
  await macrotask();
  assert.deepEqual(called, [1, 2, 3, 4]);
  await macrotask();
  assert.deepEqual(called, [1, 2, 3, 4, 5]);
});

test("a listener's microtasks run before the next slice is called", async () => {
  const fanOut = new SlicedFanOut(1);
  const order: string[] = [];
  fanOut.add(new Set(["a", "b"]), (name) => {
    order.push(`call ${name}`);
    void Promise.resolve().then(() => order.push(`write ${name}`));
  });
  await macrotask();
  await macrotask();
  assert.deepEqual(order, ["call a", "write a", "call b", "write b"]);
});

test("changes reach each listener in the order they were added, across slices", async () => {
  const fanOut = new SlicedFanOut(3);
  const seen = new Map<string, number[]>();
  const listeners = new Set(["x", "y", "z", "w"]);
  for (const change of [1, 2, 3]) fanOut.add(listeners, (name) => seen.set(name, [...(seen.get(name) ?? []), change]));
  for (let i = 0; i < 5; i++) await macrotask();
  for (const name of listeners) assert.deepEqual(seen.get(name), [1, 2, 3], name);
});

test("a listener removed before its turn is skipped, and one that throws does not stop the others", async () => {
  const fanOut = new SlicedFanOut(1);
  const active = new Set(["a", "b", "c"]);
  const called: string[] = [];
  fanOut.add(active, (name) => {
    called.push(name);
    if (name === "a") throw new Error("a subscriber failed");
  });
  active.delete("b");
  for (let i = 0; i < 3; i++) await macrotask();
  assert.deepEqual(called, ["a", "c"]);
});

test("clear() drops what was not handed out yet", async () => {
  const fanOut = new SlicedFanOut(1);
  const called: number[] = [];
  fanOut.add(new Set([1, 2, 3]), (n) => called.push(n));
  fanOut.clear();
  await macrotask();
  assert.deepEqual(called, [1]);
  fanOut.add(new Set([4]), (n) => called.push(n));
  assert.deepEqual(called, [1, 4], "a fan-out after clear() starts at once");
});

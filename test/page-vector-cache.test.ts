// The page cache's two ways in: `set` makes room by evicting the least recently used pages; `setIfRoom`
// (for pages a warm-up read to code them) only fills the room left and never evicts a page a search used.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ENTRY_OVERHEAD_BYTES, PageVectorCache } from "../src/lib/page-vector-cache.js";

/** A page of `floats` float32 values, taking `floats * 4 + ENTRY_OVERHEAD_BYTES` bytes in the cache. */
const page = (floats: number) => new Float32Array(floats);
const PAGE_BYTES = 100 * 4 + ENTRY_OVERHEAD_BYTES;

test("set evicts the least recently used pages past the budget; setIfRoom fills only the room left", () => {
  const cache = new PageVectorCache(3 * PAGE_BYTES);
  cache.set("kb", "used-1", page(100));
  cache.set("kb", "used-2", page(100));
  cache.setIfRoom("kb", "warmed-1", page(100));
  cache.setIfRoom("kb", "warmed-2", page(100));
  assert.deepEqual(cache.holding("kb", ["used-1", "used-2", "warmed-1", "warmed-2"]).missing, ["warmed-2"]);
  assert.equal(cache.stats().evictions, 0, "setIfRoom evicted a page");

  // A page already held is neither replaced nor made more recent by setIfRoom.
  const held = cache.lookup("kb", ["used-1"]).found.get("used-1")!;
  cache.setIfRoom("kb", "used-1", page(100));
  assert.equal(cache.lookup("kb", ["used-1"]).found.get("used-1"), held);

  // `set` makes room: the least recently used page (used-2: used-1 was looked up since) goes.
  cache.set("kb", "searched", page(100));
  assert.deepEqual(cache.holding("kb", ["used-1", "used-2", "warmed-1", "searched"]).missing, ["used-2"]);
  assert.equal(cache.stats().evictions, 1);
  assert.ok(cache.stats().bytes <= cache.budgetBytes);

  // A disabled cache (budget 0) keeps nothing either way.
  const off = new PageVectorCache(0);
  off.setIfRoom("kb", "p", page(1));
  assert.equal(off.stats().pages, 0);
});

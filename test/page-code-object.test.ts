// A file's page codes in the bucket (src/lib/page-code-object.ts): read back exactly as written, and any
// bytes that are not a valid object of this file and dimension read as no object at all, so that a
// damaged object makes the search code the file from Milvus again rather than bound pages wrongly.
import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeCodeObject, encodeCodeObject } from "../src/lib/page-code-object.js";
import { encodePage, type PageCodes } from "../src/lib/page-codes.js";
import { seededRandom } from "./fixtures/search-corpus.js";

const random = seededRandom(5);
const pageOf = (rows: number, dim: number) =>
  encodePage(
    Float32Array.from({ length: rows * dim }, () => random() - 0.5),
    dim,
  );

test("a file's pages read back bit for bit: rows, codes, scales, bounds and largest norm", () => {
  for (const dim of [128, 20]) {
    const pages = new Map<string, PageCodes>([
      ["alice_page-1", pageOf(7, dim)],
      ["alice_page-ü", pageOf(1, dim)],
      ["alice_empty", pageOf(0, dim)],
    ]);
    const decoded = decodeCodeObject(encodeCodeObject("alice_file", dim, pages), "alice_file", dim);
    assert.ok(decoded, `dim ${dim}: decoded`);
    assert.deepEqual([...decoded.keys()], [...pages.keys()]);
    for (const [imageId, page] of pages) {
      const back: PageCodes = decoded.get(imageId)!;
      assert.equal(back.rows, page.rows);
      assert.equal(back.largestNorm, page.largestNorm);
      assert.equal(back.byteLength, page.byteLength);
      assert.deepEqual(back.codes, page.codes);
      // Float32Array equality: the bounds' exact bits, rounded up when coded, must survive.
      assert.deepEqual(back.scales, page.scales);
      assert.deepEqual(back.errors, page.errors);
      assert.deepEqual(back.norms, page.norms);
    }
  }
});

test("another file's object, another dimension, a flipped bit, a cut or padded object, or other bytes read as none", () => {
  const pages = new Map([["alice_page", pageOf(5, 128)]]);
  const bytes = encodeCodeObject("alice_file", 128, pages);
  assert.equal(decodeCodeObject(bytes, "alice_other", 128), null, "another file's object");
  assert.equal(decodeCodeObject(bytes, "alice_file", 96), null, "another dimension");
  for (const at of [0, 5, 13, 20, 40, bytes.length - 1]) {
    const flipped = Buffer.from(bytes);
    flipped[at]! ^= 0x10;
    assert.equal(decodeCodeObject(flipped, "alice_file", 128), null, `bit flipped at byte ${at}`);
  }
  assert.equal(decodeCodeObject(bytes.subarray(0, bytes.length - 1), "alice_file", 128), null, "cut short");
  assert.equal(decodeCodeObject(Buffer.concat([bytes, Buffer.alloc(1)]), "alice_file", 128), null, "padded");
  assert.equal(decodeCodeObject(Buffer.from("not an object"), "alice_file", 128), null, "other bytes");
  assert.equal(decodeCodeObject(Buffer.alloc(0), "alice_file", 128), null, "empty");
});

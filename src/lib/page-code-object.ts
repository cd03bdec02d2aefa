// One file's page codes as one object (docs/architecture.md, "Page codes in the bucket"): what a replica
// with a cold cache reads instead of pulling a file's vectors out of Milvus row by row. Hand-written
// binary: the payload is typed arrays, so JSON would triple it and lose the float32 bounds' exact bits.
//
// Layout, little-endian: "LGPC", version, dim, CRC-32 of the body, then the body: the file id, the page
// count, and per page its image id, rows, largest norm (f64), codes (rows x stride int8), then scales,
// errors and norms (rows float32 each). Strings are a u32 byte length and UTF-8.

import { crc32 } from "node:zlib";
import { pageCodesOf, strideOf, type PageCodes } from "./page-codes.js";

const MAGIC = "LGPC";
const VERSION = 1;
const HEADER_BYTES = 16;

/** Encodes a file's pages (image id -> codes). */
export function encodeCodeObject(fileId: string, dim: number, pages: ReadonlyMap<string, PageCodes>): Buffer {
  const stride = strideOf(dim);
  const parts: Buffer[] = [];
  const u32 = (value: number) => {
    const part = Buffer.alloc(4);
    part.writeUInt32LE(value);
    parts.push(part);
  };
  const text = (value: string) => {
    const bytes = Buffer.from(value, "utf8");
    u32(bytes.length);
    parts.push(bytes);
  };
  const array = (view: ArrayBufferView) => parts.push(Buffer.from(view.buffer, view.byteOffset, view.byteLength));
  text(fileId);
  u32(pages.size);
  for (const [imageId, page] of pages) {
    if (page.codes.length !== page.rows * stride) throw new Error(`page ${imageId} is not coded for ${dim}-d rows`);
    text(imageId);
    u32(page.rows);
    const largest = Buffer.alloc(8);
    largest.writeDoubleLE(page.largestNorm);
    parts.push(largest);
    [page.codes, page.scales, page.errors, page.norms].forEach(array);
  }
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(HEADER_BYTES);
  header.write(MAGIC, 0, "latin1");
  header.writeUInt32LE(VERSION, 4);
  header.writeUInt32LE(dim, 8);
  header.writeUInt32LE(crc32(body), 12);
  return Buffer.concat([header, body]);
}

/**
 * A file's pages from its object, or null when the bytes are not one: another format or version,
 * another dimension, another file's object, a checksum or a length that does not add up. A caller
 * then codes the file from Milvus again, so a damaged object only costs time.
 */
export function decodeCodeObject(bytes: Buffer, fileId: string, dim: number): Map<string, PageCodes> | null {
  if (bytes.length < HEADER_BYTES || bytes.toString("latin1", 0, 4) !== MAGIC) return null;
  if (bytes.readUInt32LE(4) !== VERSION || bytes.readUInt32LE(8) !== dim) return null;
  const body = bytes.subarray(HEADER_BYTES);
  if (crc32(body) !== bytes.readUInt32LE(12)) return null;
  const stride = strideOf(dim);
  let at = 0;
  const take = (length: number) => {
    if (length < 0 || at + length > body.length) throw new RangeError("truncated");
    const start = at;
    at += length;
    // A copy: typed arrays need aligned offsets, and the cache must not pin the whole object.
    return body.buffer.slice(body.byteOffset + start, body.byteOffset + at);
  };
  const u32 = () => new DataView(take(4)).getUint32(0, true);
  const text = () => Buffer.from(take(u32())).toString("utf8");
  try {
    if (text() !== fileId) return null;
    const pages = new Map<string, PageCodes>();
    for (let count = u32(); count > 0; count--) {
      const imageId = text();
      const rows = u32();
      const largestNorm = new DataView(take(8)).getFloat64(0, true);
      const codes = new Int8Array(take(rows * stride));
      const [scales, errors, norms] = [0, 1, 2].map(() => new Float32Array(take(rows * 4)));
      pages.set(
        imageId,
        pageCodesOf(rows, dim, { codes, scales: scales!, errors: errors!, norms: norms! }, largestNorm),
      );
    }
    return at === body.length ? pages : null;
  } catch (error) {
    if (error instanceof RangeError) return null;
    throw error;
  }
}

// What an object in the bucket is stored and served as (docs/security.md, "Uploaded files"): decided
// by the gateway from the file's own bytes and key, never from a type a client sent.
import { fileTypeFromBuffer } from "file-type";
import { extensionOf } from "./ingestion-contract.js";

/** How many leading bytes the content check reads (file-type's own sample size). */
export const HEAD_BYTES = 4100;

/** Types a browser only ever displays as a document or picture, never runs as a page. */
const DISPLAYED_TYPES = new Set([
  "application/pdf",
  "image/png",
  "image/jpeg",
  "image/gif",
  "image/bmp",
  "image/webp",
  "image/tiff",
  "image/x-icon",
]);

/** The stored Content-Type of an original: the type its leading bytes prove, else application/octet-stream. */
export async function storedContentType(head: Uint8Array): Promise<string> {
  const detected = await fileTypeFromBuffer(head.subarray(0, HEAD_BYTES));
  return detected && DISPLAYED_TYPES.has(detected.mime) ? detected.mime : "application/octet-stream";
}

/**
 * The response headers a presigned GET of `objectKey` asks the store for, whatever the object's own
 * metadata: page images (`.png`) inline as image/png, every other object as a download.
 */
export function servedAs(objectKey: string): Record<string, string> {
  const extension = extensionOf(objectKey);
  if (extension === "png") return { "response-content-disposition": "inline", "response-content-type": "image/png" };
  return {
    "response-content-disposition": "attachment",
    "response-content-type": extension === "pdf" ? "application/pdf" : "application/octet-stream",
  };
}

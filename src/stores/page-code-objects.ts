// Each file's page codes as one object in the bucket, beside its page images (docs/architecture.md, "Page
// codes in the bucket"): a replica with a cold cache reads a base's codes in a few large GETs instead of
// pulling its vectors out of Milvus row by row. An object is only ever a copy of what Milvus holds for the
// file's pages (a page's vectors never change), so a missing or unreadable one only costs time.
import type { Config } from "../config.js";
import { parseUserId } from "../lib/layra-ids.js";
import { decodeCodeObject, encodeCodeObject } from "../lib/page-code-object.js";
import type { PageCodes } from "../lib/page-codes.js";
import { ObjectTooLarge, type S3Store } from "./s3.js";

export const PAGE_CODES_PREFIX = "page-codes/";

/**
 * The object key of a file's page codes. LAYRA's own keys start with a username, which cannot contain
 * `-`, so no key of LAYRA's ever starts with `page-codes/`.
 */
export const pageCodeObjectKey = (fileId: string) => `${PAGE_CODES_PREFIX}${fileId}`;

/** The file id a page-code object's key names, or null for a key of any other shape. */
export function fileIdOfPageCodeKey(key: string): string | null {
  const fileId = key.startsWith(PAGE_CODES_PREFIX) ? key.slice(PAGE_CODES_PREFIX.length) : "";
  return parseUserId(fileId) ? fileId : null;
}

export interface PageCodeObjects {
  /**
   * A file's pages (image id -> codes), or null when it has no object yet, or one that is not a valid
   * object of this file and dimension, or one larger than `maxBytes`.
   */
  read(fileId: string, maxBytes: number): Promise<Map<string, PageCodes> | null>;
  /** Writes (or replaces) a file's object. */
  write(fileId: string, pages: ReadonlyMap<string, PageCodes>): Promise<void>;
}

export function createPageCodeObjects(config: Config, s3: S3Store): PageCodeObjects {
  const { dim } = config.milvus;
  return {
    read: async (fileId, maxBytes) => {
      const bytes = await s3.getObject(pageCodeObjectKey(fileId), maxBytes).catch((error) => {
        if (error instanceof ObjectTooLarge) return null;
        throw error;
      });
      return bytes && decodeCodeObject(bytes, fileId, dim);
    },
    write: (fileId, pages) =>
      s3.putObject(pageCodeObjectKey(fileId), encodeCodeObject(fileId, dim, pages), "application/octet-stream"),
  };
}

import { createHash } from "node:crypto";
import { Client, CopyDestinationOptions, CopySourceOptions } from "minio";
import type { Config } from "../config.js";
import { errorMessage, UpstreamUnavailable } from "../errors.js";
import { probe, type StoreHealth } from "./health.js";
import { observeStoreCall } from "./observe.js";
import { HEAD_BYTES, servedAs } from "../lib/object-types.js";
import { createPresigner } from "../lib/sigv4-presign.js";
import { withTimeout } from "./timeout.js";

/** An object larger than its reader allows (getObject's `maxBytes`). */
export class ObjectTooLarge extends Error {}

interface ObjectInfo {
  size: number;
  etag: string;
}

export interface S3Store {
  /** The MinIO client, for tests and tools that check or write as LAYRA does; gateway code uses the methods. */
  client: Client;
  bucket: string;
  /**
   * A fresh GET URL on the public endpoint; LAYRA's stored 100-year URLs are never handed out. It
   * names the response's Content-Type and Content-Disposition itself (src/lib/object-types.ts).
   */
  presignGet(objectKey: string): string;
  ensureBucket(): Promise<void>;
  /**
   * A PUT URL on the public endpoint, for a client to upload one object directly: the signature
   * covers the Content-Type and Content-Length, so only a body of exactly `size` bytes sent with
   * exactly `contentType` is accepted.
   */
  presignPut(objectKey: string, expirySeconds: number, declared: { contentType: string; size: number }): string;
  /** Writes an object; on the store timeout the request is aborted, so no late write follows a failure. */
  putObject(objectKey: string, body: Buffer, contentType: string): Promise<void>;
  /**
   * The object's bytes, or null when there is no such object. With `maxBytes`, its size is checked
   * before the download and counted during it: a larger object throws ObjectTooLarge.
   */
  getObject(objectKey: string, maxBytes?: number): Promise<Buffer | null>;
  /** The object's first bytes (enough for src/lib/object-types.ts), or null when there is no such object. */
  readHead(objectKey: string): Promise<Buffer | null>;
  /** The object's size and ETag, or null when there is no such object. */
  objectInfo(objectKey: string): Promise<ObjectInfo | null>;
  /**
   * Copies `source` to `target` with only `contentType` as metadata, if `source` still has `etag`:
   * false when it changed (or went) since it was read.
   */
  copyObject(source: string, target: string, etag: string, contentType: string): Promise<boolean>;
  /** The object's stored Content-Type (application/octet-stream when it has none). */
  contentType(objectKey: string): Promise<string>;
  /** Deletes objects; a key that is already gone counts as deleted (idempotent). */
  removeObjects(keys: string[]): Promise<void>;
  /** At most `limit` objects under `prefix` whose keys sort after `startAfter`, in key order. */
  listObjects(prefix: string, startAfter: string, limit: number): Promise<{ key: string; lastModified: Date }[]>;
  health(): Promise<StoreHealth>;
  close(): Promise<void>;
}

const isMissing = (error: unknown) => ["NotFound", "NoSuchKey"].includes(String((error as { code?: string }).code));

function clientFor(endpoint: URL, config: Config): Client {
  const secure = endpoint.protocol === "https:";
  return new Client({
    endPoint: endpoint.hostname,
    port: endpoint.port ? Number(endpoint.port) : secure ? 443 : 80,
    useSSL: secure,
    accessKey: config.s3.accessKey,
    secretKey: config.s3.secretKey,
    // With the region known the client signs locally and never asks the server for it.
    region: config.s3.region,
    pathStyle: true,
  });
}

export function createS3Store(config: Config): S3Store {
  const client = clientFor(config.s3.endpoint, config);
  // Presigning is local computation against the host that browsers reach.
  const presign = createPresigner({ ...config.s3, endpoint: config.s3.publicEndpoint });
  const { bucket } = config.s3;
  /** One S3 call, observed as `operation` in store_call_duration_seconds. */
  const observed = <T>(operation: string, work: () => Promise<T>) => observeStoreCall("s3", work, operation);
  /** The same within the store timeout. */
  const call = <T>(operation: string, work: () => Promise<T>) =>
    observed(operation, () => withTimeout("s3", config.storeTimeoutMs, work()));
  const timeout = <T>(work: Promise<T>) => withTimeout("s3", config.storeTimeoutMs, work);
  /** Reads a stream whole, failing once it passes `maxBytes`. */
  const readAll = async (stream: AsyncIterable<Buffer>, maxBytes: number) => {
    const parts: Buffer[] = [];
    let total = 0;
    for await (const part of stream) {
      total += part.length;
      if (total > maxBytes) throw new ObjectTooLarge(`the object is larger than ${maxBytes} bytes`);
      parts.push(part);
    }
    return Buffer.concat(parts);
  };
  const objectInfo = (objectKey: string) =>
    observed("statObject", async () => {
      try {
        const stat = await timeout(client.statObject(bucket, objectKey));
        return { size: stat.size, etag: stat.etag };
      } catch (error) {
        if (isMissing(error)) return null;
        throw error;
      }
    });
  // The minio client cannot abort a request it started; a presigned PUT through fetch can, so a
  // write that timed out ends on the wire and cannot land after the caller's clean-up.
  const internalPresign = createPresigner(config.s3);
  const putObject = async (objectKey: string, body: Buffer, contentType: string) => {
    // Content-MD5 makes the store refuse a body cut short: an aborted PUT cannot leave a truncated object.
    const headers = {
      "content-type": contentType,
      "content-length": String(body.length),
      "content-md5": createHash("md5").update(body).digest("base64"),
    };
    const url = internalPresign(bucket, objectKey, Math.ceil(config.storeTimeoutMs / 1000) + 60, {
      method: "PUT",
      headers,
    });
    let response: Response;
    try {
      response = await fetch(url, {
        method: "PUT",
        // content-length is signed but left to fetch, which sends the body's own: Node 20's undici refuses a set one.
        headers: { "content-type": headers["content-type"], "content-md5": headers["content-md5"] },
        // A Buffer's memory is an ArrayBuffer, never a shared one.
        body: body as Uint8Array<ArrayBuffer>,
        signal: AbortSignal.timeout(config.storeTimeoutMs),
      });
    } catch (error) {
      const reason = (error as Error).name === "TimeoutError" ? `no answer within ${config.storeTimeoutMs} ms` : "";
      throw new UpstreamUnavailable("s3", reason || errorMessage((error as Error).cause ?? error));
    }
    await response.arrayBuffer();
    if (!response.ok) throw new UpstreamUnavailable("s3", `PUT answered ${response.status}`);
  };
  return {
    client,
    bucket,
    presignGet: (objectKey) =>
      presign(bucket, objectKey, config.s3.presignExpirySeconds, { query: servedAs(objectKey) }),
    presignPut: (objectKey, expirySeconds, { contentType, size }) =>
      presign(bucket, objectKey, expirySeconds, {
        method: "PUT",
        headers: { "content-type": contentType, "content-length": String(size) },
      }),
    putObject: (objectKey, body, contentType) => observed("putObject", () => putObject(objectKey, body, contentType)),
    getObject: (objectKey, maxBytes = Number.POSITIVE_INFINITY) =>
      observeStoreCall(
        "s3",
        async () => {
          if (Number.isFinite(maxBytes)) {
            const info = await objectInfo(objectKey);
            if (info === null) return null;
            if (info.size > maxBytes)
              throw new ObjectTooLarge(`the object has ${info.size} bytes, more than ${maxBytes}`);
          }
          let stream;
          try {
            stream = await timeout(client.getObject(bucket, objectKey));
          } catch (error) {
            if (isMissing(error)) return null;
            throw error;
          }
          return readAll(stream, maxBytes);
        },
        "getObject",
      ),
    readHead: (objectKey) =>
      observed("getPartialObject", async () => {
        let stream;
        try {
          stream = await timeout(client.getPartialObject(bucket, objectKey, 0, HEAD_BYTES));
        } catch (error) {
          if (isMissing(error)) return null;
          throw error;
        }
        return timeout(readAll(stream, HEAD_BYTES));
      }),
    objectInfo,
    copyObject: (source, target, etag, contentType) =>
      call("copyObject", async () => {
        try {
          await client.copyObject(
            new CopySourceOptions({ Bucket: bucket, Object: source, MatchETag: etag }),
            new CopyDestinationOptions({
              Bucket: bucket,
              Object: target,
              MetadataDirective: "REPLACE",
              Headers: { "Content-Type": contentType },
            }),
          );
          return true;
        } catch (error) {
          if (isMissing(error) || (error as { code?: string }).code === "PreconditionFailed") return false;
          throw error;
        }
      }),
    ensureBucket: async () => {
      if (!(await call("bucketExists", () => client.bucketExists(bucket))))
        await call("makeBucket", () => client.makeBucket(bucket, config.s3.region));
    },
    removeObjects: async (keys) => {
      // One DeleteObjects request (at most 1000 keys) per timeout, so a large knowledge base is not cut short.
      for (let start = 0; start < keys.length; start += 1000) {
        const results = await call("removeObjects", () =>
          client.removeObjects(bucket, keys.slice(start, start + 1000)),
        );
        const failed = results.filter((result) => result?.Error && result.Error.Code !== "NoSuchKey");
        if (failed.length > 0)
          throw new UpstreamUnavailable(
            "s3",
            `${failed.length} object(s) not deleted: ${failed[0]!.Error!.Code ?? "error"}`,
          );
      }
    },
    listObjects: (prefix, startAfter, limit) =>
      call("listObjectsV2", async () => {
        const listed: { key: string; lastModified: Date }[] = [];
        // Leaving the loop early destroys the stream: no further listing page is requested.
        for await (const item of client.listObjectsV2(bucket, prefix, true, startAfter)) {
          if (item.name) listed.push({ key: item.name, lastModified: item.lastModified });
          if (listed.length >= limit) break;
        }
        return listed;
      }),
    contentType: async (objectKey) => {
      const stat = await call("statObject", () => client.statObject(bucket, objectKey));
      return String(stat.metaData["content-type"] ?? "application/octet-stream");
    },
    health: () =>
      probe("s3", async () => {
        if (!(await withTimeout("s3", config.storeTimeoutMs, client.bucketExists(bucket))))
          throw new Error(`bucket ${bucket} does not exist`);
      }),
    close: async () => {},
  };
}

import { Client } from "minio";
import type { Config } from "../config.js";
import { UpstreamUnavailable } from "../errors.js";
import { probe, type StoreHealth } from "./health.js";
import { observeStoreCall } from "./observe.js";
import { createPresigner } from "../lib/sigv4-presign.js";
import { withTimeout } from "./timeout.js";

export interface S3Store {
  /** The MinIO client, for tests and tools that check or write as LAYRA does; gateway code uses the methods. */
  client: Client;
  bucket: string;
  /** A fresh GET URL on the public endpoint; LAYRA's stored 100-year URLs are never handed out. */
  presignGet(objectKey: string): string;
  ensureBucket(): Promise<void>;
  /** A PUT URL on the public endpoint, for a client to upload one object directly. */
  presignPut(objectKey: string, expirySeconds: number): string;
  putObject(objectKey: string, body: Buffer, contentType: string): Promise<void>;
  /** The object's bytes, or null when there is no such object. */
  getObject(objectKey: string): Promise<Buffer | null>;
  /** The object's size in bytes, or null when there is no such object. */
  objectSize(objectKey: string): Promise<number | null>;
  /** The object's stored Content-Type (application/octet-stream when it has none). */
  contentType(objectKey: string): Promise<string>;
  /** Deletes objects; a key that is already gone counts as deleted (idempotent). */
  removeObjects(keys: string[]): Promise<void>;
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
  return {
    client,
    bucket,
    presignGet: (objectKey) => presign(bucket, objectKey, config.s3.presignExpirySeconds),
    presignPut: (objectKey, expirySeconds) => presign(bucket, objectKey, expirySeconds, new Date(), "PUT"),
    putObject: (objectKey, body, contentType) =>
      observeStoreCall(
        "s3",
        () => timeout(client.putObject(bucket, objectKey, body, body.length, { "Content-Type": contentType })),
        "putObject",
      ).then(() => undefined),
    getObject: (objectKey) =>
      observeStoreCall(
        "s3",
        async () => {
          let stream;
          try {
            stream = await timeout(client.getObject(bucket, objectKey));
          } catch (error) {
            if (isMissing(error)) return null;
            throw error;
          }
          const parts: Buffer[] = [];
          for await (const part of stream) parts.push(part as Buffer);
          return Buffer.concat(parts);
        },
        "getObject",
      ),
    objectSize: (objectKey) =>
      observeStoreCall(
        "s3",
        async () => {
          try {
            return (await timeout(client.statObject(bucket, objectKey))).size;
          } catch (error) {
            if (isMissing(error)) return null;
            throw error;
          }
        },
        "statObject",
      ),
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

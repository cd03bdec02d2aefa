// Our SigV4 presigner against the minio client's (byte for byte, same instant) and against a
// server that checks signatures (versitygw): keys with spaces, unicode and reserved characters.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Client } from "minio";
import { createPresigner } from "../src/lib/sigv4-presign.js";
import { gatewayForFile } from "./helpers.js";

const file = gatewayForFile();
const KEYS = [
  "alice_plain_0123456789abcdef01234567.png",
  "alice_my report (v2)_0a1b.pdf",
  "alice_résumé+notes!'*_x.png",
  "alice_dir/sub dir/page 1.png",
];

test("the presigned URL equals the minio client's for the same instant, whatever the key", async () => {
  const { s3 } = file.gateway.config;
  const presign = createPresigner({ ...s3, endpoint: s3.publicEndpoint });
  const minio = new Client({
    endPoint: s3.publicEndpoint.hostname,
    port: Number(s3.publicEndpoint.port),
    useSSL: false,
    accessKey: s3.accessKey,
    secretKey: s3.secretKey,
    region: s3.region,
    pathStyle: true,
  });
  for (const when of [
    new Date("2026-01-02T03:04:05.678Z"),
    new Date("2026-12-31T23:59:59Z"),
    new Date("2027-01-01T00:00:01Z"),
  ]) {
    for (const key of KEYS) {
      assert.equal(
        presign(s3.bucket, key, 900, { now: when }),
        await minio.presignedGetObject(s3.bucket, key, 900, {}, when),
        `${key} at ${when.toISOString()}`,
      );
      // Signed response overrides sort among the X-Amz- parameters as SigV4 wants.
      const query = { "response-content-disposition": "attachment", "response-content-type": "application/pdf" };
      // The same parameters and signature (minio puts the overrides first; the order in a URL is free).
      const sortedQuery = (url: string) => [...new URL(url).searchParams].sort().join("&");
      assert.equal(
        sortedQuery(presign(s3.bucket, key, 900, { now: when, query })),
        sortedQuery(await minio.presignedGetObject(s3.bucket, key, 900, query, when)),
        `${key} at ${when.toISOString()} with response overrides`,
      );
    }
  }
});

test("a signature-checking S3 server serves every presigned key and refuses a tampered one", async () => {
  const { s3 } = file.gateway.app.stores;
  for (const key of KEYS) {
    await s3.client.putObject(s3.bucket, key, Buffer.from(`bytes of ${key}`));
    const url = s3.presignGet(key);
    const response = await fetch(url);
    assert.equal(response.status, 200, key);
    assert.equal(await response.text(), `bytes of ${key}`);
    const signature = new URL(url).searchParams.get("X-Amz-Signature")!;
    assert.equal(
      (
        await fetch(
          url.replace(
            signature,
            signature.replace(/^./, (c) => (c === "0" ? "1" : "0")),
          ),
        )
      ).status,
      403,
    );
  }
});

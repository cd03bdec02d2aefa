// LAYRA's id and object-key shapes parsed whole (src/lib/layra-ids.ts): the one place ownership is
// read from an id or key. No store is needed.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import {
  isOwnId,
  isOwnObjectKey,
  objectKeyOfStoredUrl,
  parseObjectKey,
  parseTempKnowledgeBaseId,
  parseUserId,
} from "../src/lib/layra-ids.js";

const OID = "65f0c0ffee0123456789abcd";

test("object keys: the full shape, the exact owner, and nothing that could be a path", () => {
  assert.deepEqual(parseObjectKey(`alice_Guide (v2)_${OID}.pdf`), {
    owner: "alice",
    basename: "Guide (v2)",
    objectId: OID,
    extension: ".pdf",
  });
  assert.equal(isOwnObjectKey(`alice_report_final_${OID}.png`, "alice"), true);
  for (const key of [
    `alice_/../bob_x_${OID}.png`,
    `alice_..%2F..%2Fbob_x_${OID}.png`,
    `alice_a%2fb_${OID}.png`,
    `alice_a\\b_${OID}.png`,
    `alice_a\u0000_${OID}.png`,
    `alice_a\n_${OID}.png`,
    `alice_x.png`,
    `alice_x_${OID.slice(1)}.png`,
    `alice_x_${OID}.png/`,
    `_x_${OID}.png`,
    `alice_${"a".repeat(600)}_${OID}.png`,
  ])
    assert.equal(parseObjectKey(key), null, JSON.stringify(key));
  // The owner ends at the first "_" (LAYRA usernames have none) and must equal the caller: a name
  // with "_" owns no key, so `ann_x` can never be handed a key of `ann`'s or the other way round.
  assert.equal(isOwnObjectKey(`ann_x_page_${OID}.png`, "ann_x"), false);
  assert.equal(isOwnObjectKey(`ann_page_${OID}.png`, "ann_x"), false);
  assert.equal(isOwnObjectKey(`bob_page_${OID}.png`, "alice"), false);
});

test("stored URLs: exactly /bucket/key, decoded once, never resolved", () => {
  const url = (path: string) => `http://192.168.1.5${path}?AWSAccessKeyId=x&Signature=y`;
  assert.equal(objectKeyOfStoredUrl(url(`/minio-file/alice_a%20b_${OID}.pdf`), "minio-file"), `alice_a b_${OID}.pdf`);
  for (const path of [
    `/minio-file/alice_/../bob_x_${OID}.png`,
    `/minio-file/alice_%2F..%2Fbob_x_${OID}.png`,
    `/minio-file/alice_%2e%2e/bob_x_${OID}.png`,
    `/minio-file/alice_x/bob_x_${OID}.png`,
    `/other-bucket/alice_x_${OID}.png`,
    `/minio-file/alice_x_${OID}.png/extra`,
    `/minio-file/%E0%A4%A`,
  ])
    assert.equal(objectKeyOfStoredUrl(url(path), "minio-file"), null, path);
  assert.equal(objectKeyOfStoredUrl("not a url", "minio-file"), null);
});

test("ids: {username}_{uuid4} and temp_{parentId}_{uuid4} by full shape, owners compared exactly", () => {
  const uuid = randomUUID();
  const conversation = `ann_x_${randomUUID()}`;
  assert.deepEqual(parseUserId(`ann_${uuid}`), { owner: "ann", uuid });
  assert.equal(parseUserId(`ann_x_${uuid}`)?.owner, "ann_x");
  assert.equal(isOwnId(`ann_x_${uuid}`, "ann"), false, "ann does not own ann_x's ids");
  assert.equal(isOwnId(`ann_${uuid.toUpperCase()}`, "ann"), false);
  assert.equal(isOwnId(`ann_${uuid}x`, "ann"), false);
  // LAYRA's `"_".join(id[5:].split("_")[0:2])` reads `ann_x`'s temp base as `ann`'s; the full shape does not.
  assert.deepEqual(parseTempKnowledgeBaseId(`temp_${conversation}_${uuid}`), {
    parentId: conversation,
    owner: "ann_x",
  });
  assert.equal(parseTempKnowledgeBaseId(`temp_${conversation}`), null);
  assert.equal(parseUserId(`temp_${conversation}_${uuid}`), null, "a temp id is never also a normal id");
});

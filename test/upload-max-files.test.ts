// UPLOAD_MAX_FILES: a call with more files is refused, typed and naming the bound, over both upload
// paths, before anything is stored; a call at the bound goes through.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Redis } from "ioredis";
import { mongoCollections } from "../src/stores/mongo.js";
import { gatewayForFile, redisClient, uniqueName } from "./helpers.js";
import { createTopic, ingestOverrides, multipartRequest, samplePng, UPLOAD_FILES } from "./ingest-helpers.js";

const state = gatewayForFile(ingestOverrides({ UPLOAD_MAX_FILES: "2" }));
const ann = uniqueName("ann");
const CREATE_URLS = `mutation($id: String!, $files: [UploadFileInput!]!) {
  createUploadUrls(knowledgeBaseId: $id, files: $files) { uploadId } }`;
let token: string;
let knowledgeBaseId: string;
let taskDb: Redis;

before(async () => {
  const gateway = await state.ready;
  await createTopic(gateway.config, 1);
  taskDb = redisClient(gateway.config, "task");
  token = await gateway.token(ann);
  const created = await gateway.query<{ createKnowledgeBase: { knowledgeBaseId: string } }>(
    `mutation { createKnowledgeBase(name: "bounded") { knowledgeBaseId } }`,
    { token },
  );
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  knowledgeBaseId = created.data!.createKnowledgeBase.knowledgeBaseId;
});
after(() => taskDb?.disconnect());

/** What the user has in every store an upload writes: objects, files documents and refs, task and upload keys. */
async function stored() {
  const { s3 } = state.gateway.app.stores;
  const objects: string[] = [];
  for await (const item of s3.client.listObjectsV2(s3.bucket, "", true)) objects.push(String(item.name));
  const mongo = mongoCollections(state.gateway.app.stores.mongo.db);
  const kb = await mongo.knowledgeBases.findOne({ knowledge_base_id: knowledgeBaseId });
  return {
    objects,
    files: await mongo.files.countDocuments({}),
    refs: kb?.files.length,
    keys: [...(await taskDb.keys(`task:${ann}_*`)), ...(await taskDb.keys(`upload:${ann}_*`))],
  };
}

test("three files over the multipart request with UPLOAD_MAX_FILES=2: BAD_USER_INPUT, nothing stored", async () => {
  const files = ["a.png", "b.png", "c.png"].map((name) => ({ name, type: "image/png", bytes: samplePng() }));
  const refused = await multipartRequest(state.gateway, token, UPLOAD_FILES, { knowledgeBaseId }, files);
  assert.equal(refused.errors?.[0]?.extensions?.code, "BAD_USER_INPUT", JSON.stringify(refused.errors));
  assert.match(refused.errors[0].message, /must contain at most 2 files/);
  assert.deepEqual(await stored(), { objects: [], files: 0, refs: 0, keys: [] });
});

test("three declared files for presigned URLs are refused the same way; two are not", async () => {
  const declare = (count: number) =>
    state.gateway.query<{ createUploadUrls: { uploadId: string } }>(CREATE_URLS, {
      variables: {
        id: knowledgeBaseId,
        files: Array.from({ length: count }, (_, i) => ({
          filename: `f${i}.pdf`,
          contentType: "application/pdf",
          size: 5,
        })),
      },
      token,
    });
  const refused = await declare(3);
  assert.equal(refused.errors?.[0]?.extensions?.code, "BAD_USER_INPUT", JSON.stringify(refused.errors));
  assert.match(refused.errors[0].message, /must contain at most 2 files/);
  assert.deepEqual(await stored(), { objects: [], files: 0, refs: 0, keys: [] });
  const accepted = await declare(2);
  assert.equal(accepted.errors, undefined, JSON.stringify(accepted.errors));
  assert.deepEqual((await stored()).keys, [`upload:${accepted.data!.createUploadUrls.uploadId}`]);
});

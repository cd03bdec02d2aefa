// What bounds multipart uploads before their bodies are read (a caller without a valid token, too
// many uploads at once per user and per process) and what bounds the temp knowledge bases chat
// uploads leave behind. Each refusal is typed and writes nothing.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { request, type ClientRequest } from "node:http";
import { after, before, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { mongoCollections } from "../src/stores/mongo.js";
import { eventually, gatewayForFile, uniqueName } from "./helpers.js";
import { createTopic, ingestOverrides, multipartRequest, samplePng, type UploadTaskResult } from "./ingest-helpers.js";

const state = gatewayForFile(
  ingestOverrides({ UPLOAD_MAX_CONCURRENT: "3", UPLOAD_MAX_CONCURRENT_PER_USER: "2", CHAT_UPLOAD_MAX_TEMP_BASES: "2" }),
);
const open: ClientRequest[] = [];

before(async () => {
  await createTopic((await state.ready).config, 1);
});
after(() => {
  for (const req of open) req.destroy();
});

interface Answer {
  status: number;
  body: { data?: unknown; errors?: { message: string; extensions?: Record<string, unknown> }[] };
}

/**
 * A multipart upload that declares a 40 MB body and sends only its first part, then stalls: the
 * gateway can answer it only by refusing before it reads the body. The answer, if any comes.
 */
function stalledUpload(token: string | null): { answer: Promise<Answer>; req: ClientRequest } {
  const boundary = `b${randomUUID().replaceAll("-", "")}`;
  const operations = JSON.stringify({
    query: `mutation($id: String!, $files: [Upload!]!) { uploadFiles(knowledgeBaseId: $id, files: $files) { taskId } }`,
    variables: { id: "none", files: [null] },
  });
  const head =
    `--${boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${operations}\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0":["variables.files.0"]}\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="0"; filename="big.png"\r\nContent-Type: image/png\r\n\r\n`;
  const url = new URL(`${state.gateway.url}/graphql`);
  const req = request(url, {
    method: "POST",
    headers: {
      "content-type": `multipart/form-data; boundary=${boundary}`,
      "content-length": String(40 * 1024 * 1024),
      "x-graphql-csrf": "1",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
  });
  open.push(req);
  const answer = new Promise<Answer>((resolve, reject) => {
    req.on("response", (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () =>
        resolve({ status: response.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) }),
      );
    });
    req.on("error", reject);
  });
  answer.catch(() => undefined);
  req.write(head);
  req.write(Buffer.alloc(64 * 1024));
  return { answer, req };
}

/** The answer within `ms`, or null: a stalled upload the gateway is (rightly) still reading. */
const within = <T>(promise: Promise<T>, ms: number) => Promise.race([promise, delay(ms, null, { ref: false })]);

describe("multipart uploads are checked before their body is read", () => {
  test("no token, a malformed one, a bad signature, a logged-out one: 401 UNAUTHENTICATED on the headers alone", async () => {
    const revoked = await state.gateway.token(uniqueName("gone"));
    assert.equal((await state.gateway.query("mutation { logout }", { token: revoked })).errors, undefined);
    for (const token of [null, "not-a-jwt", `${revoked.slice(0, -4)}AAAA`, revoked]) {
      const { answer, req } = stalledUpload(token);
      const answered = await within(answer, 30_000);
      req.destroy();
      assert.ok(answered, `token ${token?.slice(0, 12)}: answered while the body was still unsent`);
      assert.equal(answered.status, 401);
      assert.equal(answered.body.errors?.[0]?.extensions?.code, "UNAUTHENTICATED", JSON.stringify(answered.body));
    }
  });

  test("past UPLOAD_MAX_CONCURRENT_PER_USER and UPLOAD_MAX_CONCURRENT an upload is refused (429 LIMIT_EXCEEDED); a finished one frees its place", async () => {
    const ann = await state.gateway.token(uniqueName("ann"));
    const bob = await state.gateway.token(uniqueName("bob"));
    const carol = await state.gateway.token(uniqueName("carol"));
    // Two of ann's uploads and one of bob's are being read (stalled), three in all.
    const reading = [];
    for (const token of [ann, ann, bob]) {
      const upload = stalledUpload(token);
      reading.push(upload);
      assert.equal(await within(upload.answer, 1_000), null, "admitted: its body is being read");
    }
    // A probe the gateway is still reading is withdrawn (its place freed) and sent again.
    const probed: { answer: Answer | null } = { answer: null };
    await eventually(async () => {
      const probe = stalledUpload(ann);
      probed.answer = await within(probe.answer, 2_000);
      if (!probed.answer) probe.req.destroy();
      return probed.answer !== null;
    }, "ann's third upload answered");
    const third = probed.answer;
    assert.equal(third?.body.errors?.[0]?.extensions?.code, "LIMIT_EXCEEDED", JSON.stringify(third?.body));
    assert.equal(third?.body.errors?.[0]?.extensions?.limit, "concurrent uploads of this user");
    assert.equal(third?.body.errors?.[0]?.extensions?.max, 2);
    const carols = await within(stalledUpload(carol).answer, 30_000);
    assert.equal(carols?.status, 429, JSON.stringify(carols?.body));
    assert.equal(carols?.body.errors?.[0]?.extensions?.limit, "concurrent uploads");
    assert.equal(carols?.body.errors?.[0]?.extensions?.max, 3);
    for (const { answer } of reading) assert.equal(await within(answer, 100), null, "the first three are still read");

    // The clients give up: their uploads end, and their places are free again.
    for (const { req } of reading) req.destroy();
    const knowledgeBase = await state.gateway.query<{ createKnowledgeBase: { knowledgeBaseId: string } }>(
      `mutation { createKnowledgeBase(name: "bounded") { knowledgeBaseId } }`,
      { token: carol },
    );
    assert.equal(knowledgeBase.errors, undefined, JSON.stringify(knowledgeBase.errors));
    await eventually(async () => {
      const uploaded = await multipartRequest<{ uploadFiles: UploadTaskResult }>(
        state.gateway,
        carol,
        `mutation($id: String!, $files: [Upload!]!) { uploadFiles(knowledgeBaseId: $id, files: $files) { taskId } }`,
        { id: knowledgeBase.data!.createKnowledgeBase.knowledgeBaseId },
        [{ name: "small.png", type: "image/png", bytes: samplePng() }],
      );
      return uploaded.errors === undefined && typeof uploaded.data?.uploadFiles.taskId === "string";
    }, "an upload runs once the stalled ones ended");
  });
});

describe("temp knowledge bases of chat uploads", () => {
  test("past CHAT_UPLOAD_MAX_TEMP_BASES uploadChatFiles is LIMIT_EXCEEDED and creates nothing", async () => {
    const username = uniqueName("chatter");
    const token = await state.gateway.token(username);
    const upload = (sessionId: string) =>
      multipartRequest<{ uploadChatFiles: UploadTaskResult }>(
        state.gateway,
        token,
        `mutation($sessionId: String!, $files: [Upload!]!) { uploadChatFiles(sessionId: $sessionId, files: $files) { taskId knowledgeBaseId } }`,
        { sessionId },
        [{ name: "note.png", type: "image/png", bytes: samplePng() }],
      );
    for (let i = 0; i < 2; i++) {
      const made = await upload(`${username}_${randomUUID()}`);
      assert.equal(made.errors, undefined, JSON.stringify(made.errors));
    }
    const { mongo, milvus } = state.gateway.app.stores;
    const bases = () => mongoCollections(mongo.db).knowledgeBases.countDocuments({ username });
    const collections = async () => (await milvus.client.listCollections()).data.length;
    const [basesBefore, collectionsBefore] = [await bases(), await collections()];
    assert.equal(basesBefore, 2);
    for (let i = 0; i < 3; i++) {
      const refused = await upload(`${username}_${randomUUID()}`);
      assert.equal(refused.errors?.[0]?.extensions?.code, "LIMIT_EXCEEDED", JSON.stringify(refused));
      assert.equal(refused.errors?.[0]?.extensions?.limit, "temporary knowledge bases");
      assert.equal(refused.errors?.[0]?.extensions?.max, 2);
      assert.match(refused.errors[0].message, /delete conversations/);
    }
    assert.equal(await bases(), basesBefore);
    assert.equal(await collections(), collectionsBefore);
    // Another user is not held back by this one's bases.
    const other = uniqueName("other");
    const otherToken = await state.gateway.token(other);
    const theirs = await multipartRequest(
      state.gateway,
      otherToken,
      `mutation($sessionId: String!, $files: [Upload!]!) { uploadChatFiles(sessionId: $sessionId, files: $files) { taskId } }`,
      { sessionId: `${other}_${randomUUID()}` },
      [{ name: "note.png", type: "image/png", bytes: samplePng() }],
    );
    assert.equal(theirs.errors, undefined, JSON.stringify(theirs.errors));
  });
});

// Upload and ingestion end to end on the real local servers and a real Kafka broker: files go in
// over the multipart request or presigned URLs, a worker ingests them from the topic, taskProgress
// follows the task, and every store ends exactly as LAYRA's pipeline would leave it (minus its
// half-written leftovers). Bad input and other users' ids write nothing anywhere.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Redis } from "ioredis";
import { collectionName } from "../src/stores/milvus.js";
import { gatewayForFile, redisClient, startGateway, uniqueName } from "./helpers.js";
import {
  brokenPdf,
  createTopic,
  ingestOverrides,
  multipartRequest,
  samplePdf,
  samplePng,
  startWorkers,
  UPLOAD_FILES,
  waitFor,
  type UploadTaskResult,
} from "./ingest-helpers.js";
import { wsOperation } from "./ws.js";
import { mongoCollections } from "../src/stores/mongo.js";
import { encodePage } from "../src/lib/page-codes.js";
import { toMatrix } from "../src/lib/maxsim.js";

// A converter path that cannot exist, so the office-document case is the same on every machine; pages
// rendered large enough for the local model server's OCR to read their words (the sample pages are small).
const overrides = ingestOverrides({ SOFFICE_PATH: "/nonexistent/soffice", EMBEDDING_IMAGE_DPI: "150" });
const state = gatewayForFile(overrides);
// Users of this file alone: every id the gateway mints starts with its user's name, so the store
// snapshots below see this file's keys and collections only, not those other files leave to expire.
const ann = uniqueName("ann");
const bob = uniqueName("bob");
let token: string;
let otherToken: string;
let knowledgeBaseId: string;
let stopWorkers: () => Promise<unknown>;
/** The task database, where the task hashes and the presigned uploads' keys are. */
let taskDb: Redis;

const CREATE_KB = `mutation($name: String!) { createKnowledgeBase(name: $name) { knowledgeBaseId } }`;
const FILES = `query($id: String!) { knowledgeBase(knowledgeBaseId: $id) {
  files(first: 50) { edges { node { fileId filename pageCount pages { imageId pageNumber url } } } } } }`;
const PROGRESS = `subscription($taskId: String!) { taskProgress(taskId: $taskId) {
  status processed total message currentFile pagesDone pagesTotal failedFiles end } }`;

interface ProgressEvent {
  status: string | null;
  processed: number | null;
  total: number | null;
  message: string | null;
  currentFile: string | null;
  pagesDone: number | null;
  pagesTotal: number | null;
  failedFiles: string[];
  end: string | null;
}
interface FileNode {
  fileId: string;
  filename: string;
  pageCount: number;
  pages: { imageId: string; pageNumber: number; url: string }[];
}

async function newKnowledgeBase(userToken: string): Promise<string> {
  const created = await state.gateway.query<{ createKnowledgeBase: { knowledgeBaseId: string } }>(CREATE_KB, {
    variables: { name: "uploads" },
    token: userToken,
  });
  assert.equal(created.errors, undefined);
  return created.data!.createKnowledgeBase.knowledgeBaseId;
}

async function listFiles(id: string): Promise<FileNode[]> {
  const listed = await state.gateway.query<{ knowledgeBase: { files: { edges: { node: FileNode }[] } } }>(FILES, {
    variables: { id },
    token,
  });
  assert.equal(listed.errors, undefined);
  return listed.data!.knowledgeBase.files.edges.map((edge) => edge.node);
}

/** What exists in every store: the file's own database and bucket, its users' Milvus collections, task and upload keys. */
async function storeSnapshot() {
  const { s3, milvus } = state.gateway.app.stores;
  const mongo = mongoCollections(state.gateway.app.stores.mongo.db);
  const objects: string[] = [];
  for await (const item of s3.client.listObjectsV2(s3.bucket, "", true)) objects.push(String(item.name));
  const ours = (name: string) => name.includes(`${ann}_`) || name.includes(`${bob}_`);
  const collections = (await milvus.client.listCollections()).data
    .map((c) => c.name)
    .filter(ours)
    .sort();
  return {
    files: await mongo.files.countDocuments({}),
    knowledgeBases: (
      await mongo.knowledgeBases.find({}, { projection: { _id: 0, knowledge_base_id: 1, files: 1 } }).toArray()
    )
      .map((kb) => `${kb.knowledge_base_id}:${kb.files.length}`)
      .sort(),
    objects: objects.sort(),
    collections,
    redisKeys: (
      await Promise.all([ann, bob].flatMap((user) => [taskDb.keys(`task:${user}_*`), taskDb.keys(`upload:${user}_*`)]))
    )
      .flat()
      .sort(),
  };
}

async function milvusRows(kb: string, filter: string) {
  const { milvus } = state.gateway.app.stores;
  const rows = await milvus.client.query({
    collection_name: collectionName(kb),
    filter,
    output_fields: ["image_id", "page_number", "file_id"],
    limit: 16384,
  });
  return rows.data as { image_id: string; page_number: number; file_id: string }[];
}

async function fetchesPng(url: string): Promise<boolean> {
  const response = await fetch(url);
  const bytes = Buffer.from(await response.arrayBuffer());
  return response.ok && bytes.subarray(0, 8).toString("hex") === "89504e470d0a1a0a";
}

before(async () => {
  const gateway = await state.ready;
  taskDb = redisClient(gateway.config, "task");
  await createTopic(gateway.config, 1);
  token = await gateway.token(ann);
  otherToken = await gateway.token(bob);
  knowledgeBaseId = await newKnowledgeBase(token);
  stopWorkers = await startWorkers(gateway, state.env, overrides);
});
after(async () => {
  await stopWorkers?.();
  taskDb?.disconnect();
});

describe("uploadFiles over the multipart request", () => {
  let task: UploadTaskResult;
  let events: ProgressEvent[];
  let pdfFile: FileNode;

  test("a PDF, a PNG and a broken PDF: the task ends failed naming the broken one, with page-level progress", async () => {
    const pdf = await samplePdf(["first page", "second page", "third page"]);
    const uploaded = await multipartRequest<{ uploadFiles: UploadTaskResult }>(
      state.gateway,
      token,
      UPLOAD_FILES,
      { knowledgeBaseId },
      [
        { name: "report.pdf", type: "application/pdf", bytes: pdf },
        { name: "photo.png", type: "image/png", bytes: samplePng() },
        { name: "broken.pdf", type: "application/pdf", bytes: brokenPdf() },
      ],
    );
    assert.equal(uploaded.errors, undefined, JSON.stringify(uploaded.errors));
    task = uploaded.data!.uploadFiles;
    assert.match(task.taskId, new RegExp(`^${ann}_[0-9a-f-]{36}$`));
    assert.equal(task.knowledgeBaseId, knowledgeBaseId);
    assert.deepEqual(
      task.files.map((file) => file.filename),
      ["report.pdf", "photo.png", "broken.pdf"],
    );
    for (const file of task.files) assert.match(file.id, new RegExp(`^${ann}_[0-9a-f-]{36}$`));

    const outcome = await wsOperation(
      state.gateway.url,
      { query: PROGRESS, variables: { taskId: task.taskId } },
      {
        Authorization: `Bearer ${token}`,
      },
    );
    events = outcome.results.map((result) => {
      assert.equal(result.errors, undefined);
      return (result.data as { taskProgress: ProgressEvent }).taskProgress;
    });
    const last = events.at(-1)!;
    assert.equal(last.end, "FAILED");
    assert.equal(last.status, "failed");
    assert.equal(last.processed, 2);
    assert.equal(last.total, 3);
    assert.deepEqual(last.failedFiles, ["broken.pdf"]);
    assert.match(last.message!, /^File processing failed: broken\.pdf: /);
    assert.ok(
      events.slice(0, -1).every((event) => event.status === "processing"),
      "no terminal status before every file is done",
    );
    assert.ok(
      events.some(
        (event) => event.currentFile !== null && event.pagesTotal !== null && event.pagesDone! <= event.pagesTotal,
      ),
      "page-level progress is reported",
    );
  });

  test("the knowledge base lists the two good files, pages in order, and every page URL fetches a PNG", async () => {
    const files = await listFiles(knowledgeBaseId);
    assert.deepEqual(files.map((file) => file.filename).sort(), ["photo.png", "report.pdf"]);
    pdfFile = files.find((file) => file.filename === "report.pdf")!;
    assert.equal(pdfFile.fileId, task.files[0]!.id);
    assert.deepEqual(
      pdfFile.pages.map((page) => page.pageNumber),
      [1, 2, 3],
    );
    const png = files.find((file) => file.filename === "photo.png")!;
    assert.equal(png.pageCount, 1);
    for (const page of files.flatMap((file) => file.pages)) assert.ok(await fetchesPng(page.url), page.url);
  });

  test("Milvus holds one row per token vector, 0-based page numbers; nothing of the broken file anywhere", async () => {
    const rows = await milvusRows(knowledgeBaseId, `file_id == ${JSON.stringify(pdfFile.fileId)}`);
    const { model } = state.gateway.app.stores;
    // The model server gives each page a fixed number of token vectors: count what it answers.
    const pagePngs = await Promise.all(
      pdfFile.pages.map(async (page) => Buffer.from(await (await fetch(page.url)).arrayBuffer())),
    );
    const embeddings = await model.embedImages(pagePngs, "report.pdf", 0);
    for (const [index, page] of pdfFile.pages.entries()) {
      const pageRows = rows.filter((row) => row.image_id === page.imageId);
      assert.equal(pageRows.length, embeddings[index]!.length, `rows of page ${page.pageNumber}`);
      assert.ok(pageRows.every((row) => Number(row.page_number) === page.pageNumber - 1));
    }
    assert.equal(
      rows.length,
      embeddings.reduce((sum, vectors) => sum + vectors.length, 0),
    );
    // Beside the pages, the file's page codes for searches with a cold cache: those of what Milvus holds.
    const { dim } = state.gateway.config.milvus;
    const codes = await state.gateway.app.stores.pageCodeObjects.read(pdfFile.fileId, Infinity);
    assert.ok(codes, "report.pdf's page codes are in the bucket");
    assert.deepEqual(
      [...codes.keys()],
      pdfFile.pages.map((page) => page.imageId),
    );
    pdfFile.pages.forEach((page, index) =>
      assert.deepEqual(
        codes.get(page.imageId),
        encodePage(toMatrix(embeddings[index]!, dim), dim),
        `page ${index + 1}`,
      ),
    );

    const broken = task.files[2]!;
    assert.equal(
      await mongoCollections(state.gateway.app.stores.mongo.db).files.countDocuments({ file_id: broken.id }),
      0,
    );
    assert.equal((await milvusRows(knowledgeBaseId, `file_id == ${JSON.stringify(broken.id)}`)).length, 0);
    const snapshot = await storeSnapshot();
    assert.ok(
      snapshot.objects.every((key) => !key.startsWith(`${ann}_broken_`)),
      `no object of broken.pdf: ${snapshot.objects.join(", ")}`,
    );
    assert.equal(snapshot.files, 2);
  });

  test("searching the words of page 2 through the local model puts page 2 first", async () => {
    // The model server read each rendered page with OCR; "second" is on page 2 alone, "page" on all three.
    const searched = await state.gateway.query<{
      searchKnowledgeBase: { page: { imageId: string; pageNumber: number }; file: { filename: string } }[];
    }>(
      `query($id: String!, $query: String!) { searchKnowledgeBase(knowledgeBaseId: $id, query: $query, topK: 3) {
        page { imageId pageNumber } file { filename } } }`,
      { variables: { id: knowledgeBaseId, query: "second page" }, token },
    );
    assert.equal(searched.errors, undefined, JSON.stringify(searched.errors));
    const hits = searched.data!.searchKnowledgeBase.map((hit) => `${hit.file.filename} page ${hit.page.pageNumber}`);
    assert.equal(hits[0], "report.pdf page 2", hits.join(", "));
    assert.equal(searched.data!.searchKnowledgeBase[0]!.page.imageId, pdfFile.pages[1]!.imageId);
  });
});

describe("office documents", () => {
  test("without LibreOffice installed, a .docx fails with a message naming the missing converter", async () => {
    const uploaded = await multipartRequest<{ uploadFiles: UploadTaskResult }>(
      state.gateway,
      token,
      UPLOAD_FILES,
      { knowledgeBaseId },
      [{ name: "notes.docx", type: "application/octet-stream", bytes: Buffer.from("PK not really a docx") }],
    );
    assert.equal(uploaded.errors, undefined, JSON.stringify(uploaded.errors));
    const { taskId } = uploaded.data!.uploadFiles;
    const hash = await waitFor("the task to end", async () => {
      const fields = await taskDb.hgetall(`task:${taskId}`);
      return fields.status === "failed" ? fields : undefined;
    });
    assert.match(
      hash.message!,
      /^File processing failed: notes\.docx: \.docx files need LibreOffice \(\/nonexistent\/soffice\), which is not installed/,
    );
  });
});

describe("the presigned path", () => {
  const CREATE_URLS = `mutation($id: String!, $files: [UploadFileInput!]!) {
    createUploadUrls(knowledgeBaseId: $id, files: $files) { uploadId expiresAt files { filename url } } }`;
  const COMMIT = `mutation($uploadId: String!) { commitUploads(uploadId: $uploadId) { taskId knowledgeBaseId files { id filename url } } }`;

  async function presign(files: { filename: string; contentType: string; size: number }[]) {
    const created = await state.gateway.query<{
      createUploadUrls: { uploadId: string; files: { filename: string; url: string }[] };
    }>(CREATE_URLS, { variables: { id: knowledgeBaseId, files }, token });
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
    return created.data!.createUploadUrls;
  }

  test("PUT the original with its URL, commit, and it ends ingested like a multipart upload", async () => {
    const pdf = await samplePdf(["large one", "large two"]);
    const urls = await presign([{ filename: "large.pdf", contentType: "application/pdf", size: pdf.length }]);
    const put = await fetch(urls.files[0]!.url, {
      method: "PUT",
      headers: { "content-type": "application/pdf" },
      body: new Uint8Array(pdf),
    });
    assert.equal(put.status, 200);
    const committed = await state.gateway.query<{ commitUploads: UploadTaskResult }>(COMMIT, {
      variables: { uploadId: urls.uploadId },
      token,
    });
    assert.equal(committed.errors, undefined, JSON.stringify(committed.errors));
    const fileId = committed.data!.commitUploads.files[0]!.id;
    const done = await waitFor("the presigned file to be listed", async () =>
      (await listFiles(knowledgeBaseId)).find((file) => file.fileId === fileId),
    );
    assert.deepEqual(
      done.pages.map((page) => page.pageNumber),
      [1, 2],
    );
    const again = await state.gateway.query(COMMIT, { variables: { uploadId: urls.uploadId }, token });
    assert.equal(again.errors?.[0]?.extensions?.code, "NOT_FOUND", "an upload is committed once");
  });

  test("a commit with a missing object or a wrong size is refused and starts nothing", async () => {
    const before = await storeSnapshot();
    const missing = await presign([{ filename: "never.pdf", contentType: "application/pdf", size: 10 }]);
    const refusedMissing = await state.gateway.query(COMMIT, { variables: { uploadId: missing.uploadId }, token });
    assert.equal(refusedMissing.errors?.[0]?.extensions?.code, "BAD_USER_INPUT");
    assert.match(refusedMissing.errors[0].message, /never\.pdf/);

    // The URL signs the declared length, so the store itself refuses a shorter body; a client using an
    // unsigned URL of the same key (here, the gateway's own S3 client) is what the commit's check catches.
    const wrong = await presign([{ filename: "short.pdf", contentType: "application/pdf", size: 1000 }]);
    const shortPut = await fetch(wrong.files[0]!.url, {
      method: "PUT",
      headers: { "content-type": "application/pdf" },
      body: new Uint8Array(Buffer.from("%PDF-1.4 tiny")),
    });
    assert.equal(shortPut.status, 403);
    await shortPut.arrayBuffer();
    const { s3 } = state.gateway.app.stores;
    const stagingKey = (
      JSON.parse((await taskDb.get(`upload:${wrong.uploadId}`))!) as { files: { stagingKey: string }[] }
    ).files[0]!.stagingKey;
    await s3.client.putObject(s3.bucket, stagingKey, Buffer.from("%PDF-1.4 tiny"));
    const refusedSize = await state.gateway.query(COMMIT, { variables: { uploadId: wrong.uploadId }, token });
    assert.equal(refusedSize.errors?.[0]?.extensions?.code, "BAD_USER_INPUT");
    assert.match(refusedSize.errors[0].message, /"short\.pdf" has 13 bytes where 1000 were declared/);
    const after = await storeSnapshot();
    assert.deepEqual(after.files, before.files);
    assert.deepEqual(
      after.redisKeys.filter((key) => key.startsWith("task:")),
      before.redisKeys.filter((key) => key.startsWith("task:")),
      "no task was started",
    );
  });
});

describe("chat attachments", () => {
  test("uploadChatFiles creates the temp knowledge base as LAYRA does, and a turn references it", async () => {
    const conversationId = `${ann}_${crypto.randomUUID()}`;
    const created = await state.gateway.query(
      `mutation($id: String!) { createConversation(conversationId: $id, name: "chat") { conversationId } }`,
      { variables: { id: conversationId }, token },
    );
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
    const uploaded = await multipartRequest<{ uploadChatFiles: UploadTaskResult }>(
      state.gateway,
      token,
      `mutation($sessionId: String!, $files: [Upload!]!) { uploadChatFiles(sessionId: $sessionId, files: $files) { taskId knowledgeBaseId files { id filename } } }`,
      { sessionId: conversationId },
      [{ name: "attachment.png", type: "image/png", bytes: samplePng() }],
    );
    assert.equal(uploaded.errors, undefined, JSON.stringify(uploaded.errors));
    const task = uploaded.data!.uploadChatFiles;
    const match = new RegExp(`^temp_${conversationId}_([0-9a-f-]{36})$`).exec(task.knowledgeBaseId);
    assert.ok(match, task.knowledgeBaseId);
    const { milvus } = state.gateway.app.stores;
    const mongo = mongoCollections(state.gateway.app.stores.mongo.db);
    const kb = await mongo.knowledgeBases.findOne({ knowledge_base_id: task.knowledgeBaseId });
    assert.equal(kb?.knowledge_base_name, `temp_base_${ann}_${match[1]}`);
    assert.equal(kb?.is_delete, true);
    assert.equal(kb?.username, ann);
    assert.ok((await milvus.client.hasCollection({ collection_name: collectionName(task.knowledgeBaseId) })).value);

    await waitFor(
      "the attachment to be ingested",
      async () => (await mongo.files.countDocuments({ file_id: task.files[0]!.id })) === 1,
    );
    const turn = await state.gateway.query<{ addTurn: { uploadedFiles: { filename: string; pageCount: number }[] } }>(
      `mutation($id: String!, $temp: String!) { addTurn(conversationId: $id, input: { userMessage: "see file", aiMessage: "ok", tempDb: $temp }) {
        uploadedFiles { filename pageCount } } }`,
      { variables: { id: conversationId, temp: task.knowledgeBaseId }, token },
    );
    assert.equal(turn.errors, undefined, JSON.stringify(turn.errors));
    assert.deepEqual(turn.data!.addTurn.uploadedFiles, [{ filename: "attachment.png", pageCount: 1 }]);
  });
});

describe("refusals write nothing anywhere", () => {
  const cases: { name: string; files: { name: string; type: string; bytes: Buffer }[]; message: RegExp }[] = [
    { name: "zero files", files: [], message: /at least one file/ },
    {
      name: "an empty file",
      files: [
        { name: "fine.png", type: "image/png", bytes: samplePng() },
        { name: "empty.pdf", type: "application/pdf", bytes: Buffer.alloc(0) },
      ],
      message: /"empty\.pdf" is empty/,
    },
    {
      name: "a control character",
      files: [{ name: "bad\u0007name.pdf", type: "application/pdf", bytes: Buffer.from("x") }],
      message: /control character/,
    },
    {
      name: "an unsupported type",
      files: [{ name: "program.exe", type: "application/octet-stream", bytes: Buffer.from("MZ") }],
      message: /"program\.exe" has an unsupported type "exe"/,
    },
  ];

  for (const item of cases) {
    test(`${item.name}: BAD_USER_INPUT naming the file`, async () => {
      const before = await storeSnapshot();
      const refused = await multipartRequest(state.gateway, token, UPLOAD_FILES, { knowledgeBaseId }, item.files);
      assert.equal(refused.errors?.[0]?.extensions?.code, "BAD_USER_INPUT", JSON.stringify(refused.errors));
      assert.match(refused.errors[0].message, item.message);
      assert.deepEqual(await storeSnapshot(), before);
    });
  }

  test("a path separator in a declared name (presigned path): BAD_USER_INPUT naming the file", async () => {
    // Over multipart the parser (busboy) keeps only a name's last path segment, so no path reaches the gateway there.
    const before = await storeSnapshot();
    for (const filename of ["../etc/passwd.pdf", "dir\\file.pdf"]) {
      const refused = await state.gateway.query(
        `mutation($id: String!, $name: String!) { createUploadUrls(knowledgeBaseId: $id, files: [{ filename: $name, contentType: "application/pdf", size: 5 }]) { uploadId } }`,
        { variables: { id: knowledgeBaseId, name: filename }, token },
      );
      assert.equal(refused.errors?.[0]?.extensions?.code, "BAD_USER_INPUT");
      assert.match(refused.errors[0].message, /has a path separator in its name/);
      assert.ok(refused.errors[0].message.includes(JSON.stringify(filename)));
    }
    assert.deepEqual(await storeSnapshot(), before);
  });

  test("a file over the size limit is refused by name; a body over the multipart limit names the presigned path", async () => {
    // A gateway with tiny limits on the same stores.
    const limited = await startGateway(state.env, {
      ...overrides,
      MONGODB_DB: state.gateway.config.mongo.database,
      MINIO_BUCKET_NAME: state.gateway.config.s3.bucket,
      UPLOAD_MAX_FILE_BYTES: "100",
      UPLOAD_MAX_REQUEST_BYTES: "3000",
    });
    try {
      const limitedToken = await limited.token(ann);
      const before = await storeSnapshot();
      const big = await multipartRequest(limited, limitedToken, UPLOAD_FILES, { knowledgeBaseId }, [
        { name: "big.png", type: "image/png", bytes: Buffer.alloc(500, 1) },
      ]);
      assert.equal(big.errors?.[0]?.extensions?.code, "BAD_USER_INPUT");
      assert.match(big.errors[0].message, /"big\.png": file size 500 bytes exceeds the limit of 100 bytes/);
      const huge = await multipartRequest(limited, limitedToken, UPLOAD_FILES, { knowledgeBaseId }, [
        { name: "huge.pdf", type: "application/pdf", bytes: Buffer.alloc(5000, 1) },
      ]);
      assert.equal(huge.status, 413);
      assert.equal(huge.errors?.[0]?.extensions?.code, "LIMIT_EXCEEDED");
      assert.match(huge.errors[0].message, /createUploadUrls/);
      assert.deepEqual(await storeSnapshot(), before);
    } finally {
      await limited.app.stop();
    }
  });

  test("another user's knowledge base or session: NOT_FOUND, nothing written", async () => {
    const created = await state.gateway.query<{ createConversation: { conversationId: string } }>(
      `mutation { createConversation(name: "ann's chat") { conversationId } }`,
      { token },
    );
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
    const before = await storeSnapshot();
    const intoAnns = await multipartRequest(state.gateway, otherToken, UPLOAD_FILES, { knowledgeBaseId }, [
      { name: "intruder.png", type: "image/png", bytes: samplePng() },
    ]);
    assert.equal(intoAnns.errors?.[0]?.extensions?.code, "NOT_FOUND");
    const missing = await multipartRequest(
      state.gateway,
      otherToken,
      UPLOAD_FILES,
      { knowledgeBaseId: `${bob}_nothing` },
      [{ name: "intruder.png", type: "image/png", bytes: samplePng() }],
    );
    assert.equal(
      missing.errors?.[0]?.message.replace(`${bob}_nothing`, knowledgeBaseId),
      intoAnns.errors?.[0]?.message,
    );
    // Ann's real conversation, and a session id of ann's shape that names nothing: bob is answered
    // NOT_FOUND for both, in the same words but for the id.
    const sessionAnswers = [];
    for (const annsSession of [created.data!.createConversation.conversationId, `${ann}_${crypto.randomUUID()}`]) {
      const intoSession = await multipartRequest(
        state.gateway,
        otherToken,
        `mutation($sessionId: String!, $files: [Upload!]!) { uploadChatFiles(sessionId: $sessionId, files: $files) { taskId } }`,
        { sessionId: annsSession },
        [{ name: "intruder.png", type: "image/png", bytes: samplePng() }],
      );
      assert.equal(intoSession.errors?.[0]?.extensions?.code, "NOT_FOUND", annsSession);
      sessionAnswers.push(JSON.parse(JSON.stringify(intoSession).replaceAll(annsSession, "<id>")) as unknown);
    }
    assert.deepEqual(sessionAnswers[0], sessionAnswers[1], "ann's real session is answered like a missing one");
    const urls = await state.gateway.query(
      `mutation($id: String!) { createUploadUrls(knowledgeBaseId: $id, files: [{ filename: "a.pdf", contentType: "application/pdf", size: 5 }]) { uploadId } }`,
      { variables: { id: knowledgeBaseId }, token: otherToken },
    );
    assert.equal(urls.errors?.[0]?.extensions?.code, "NOT_FOUND");
    assert.deepEqual(await storeSnapshot(), before);
  });
});

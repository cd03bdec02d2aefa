// The LAYRA contract against LAYRA's own bytes, not against the project's emulation of it: the documents,
// task hash and Kafka message in test/fixtures/layra-captured/ were written by LAYRA's backend code at its
// pinned commit (docs/layra-contract.md, "Captured fixtures"). Reads load them into the stores and go
// through the gateway's GraphQL; the gateway's worker consumes the captured message; and what the gateway
// writes is compared with what LAYRA wrote, field by field, BSON types included.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { BSON, type Document } from "mongodb";
import { encodeEmbeddingMessage } from "../src/lib/ingestion-contract.js";
import { createKafkaStore } from "../src/stores/kafka.js";
import { createTopic, ingestOverrides, multipartRequest, startWorkers, UPLOAD_FILES } from "./ingest-helpers.js";
import { wsClient, wsSubscribe } from "./fixtures/subscribers.js";
import { eventually, redisClient, sharedStackEnv, startGateway, type TestGateway } from "./helpers.js";

const { EJSON } = BSON;
const dir = join(import.meta.dirname, "fixtures/layra-captured");
/** A captured file as BSON values: Int32, Double, Long, ObjectId and Date keep their types. */
const captured = <T = Document>(name: string): T =>
  EJSON.parse(readFileSync(join(dir, name), "utf8"), { relaxed: false }) as T;
const knowledgeBase = captured<{ created: Document; afterIngestion: Document; file: Document }>("knowledge-base.json");
const conversation = captured<{ conversation: Document; temporaryBase: Document }>("conversation.json");
const modelConfig = captured("model-config.json");
const workflow = captured<{ workflow: Document; chatflow: Document }>("workflow.json");
interface TaskSnapshot {
  key: string;
  db: number;
  hash: Record<string, string>;
  ttl: number;
}
// Relaxed: the task snapshot's numbers (database, TTL) as plain numbers; the hash itself is strings.
const upload = EJSON.parse(readFileSync(join(dir, "upload-task.json"), "utf8")) as {
  task: { afterUpload: TaskSnapshot; afterIngestion: TaskSnapshot };
  message: { topic: string; key: string | null; value: string; headers: [string, string][] };
};
const USERNAME = String(knowledgeBase.created.username);
const pdf = readFileSync(join(dir, "upload.pdf"));
let shared: Awaited<ReturnType<typeof sharedStackEnv>>;
/** Reads LAYRA's documents, and writes its own for another user beside them. */
let gw: TestGateway;
const gwOverrides = ingestOverrides();
let token: string;
const collection = (gateway: TestGateway, name: string) => gateway.app.stores.mongo.db.collection(name);

before(async () => {
  shared = await sharedStackEnv();
  gw = await startGateway(shared.env, gwOverrides);
  await createTopic(gw.config, 1);
  token = await gw.token(USERNAME);
});

after(async () => {
  await gw.close();
  await shared.close();
});

/**
 * The BSON type of every value, recursively: what LAYRA's Python driver reads back. Arrays show the type of
 * their first element (LAYRA's arrays are homogeneous), so documents with different contents compare.
 */
function bsonTypes(value: unknown): unknown {
  if (value === null) return "null";
  if (value instanceof Date) return "Date";
  if (Array.isArray(value)) return value.length === 0 ? ["empty"] : [bsonTypes(value[0])];
  if (typeof value === "object") {
    const tagged = (value as { _bsontype?: string })._bsontype;
    if (tagged) return tagged;
    return Object.fromEntries(
      Object.entries(value)
        .filter(([key]) => key !== "_id")
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([key, field]) => [key, bsonTypes(field)]),
    );
  }
  return typeof value;
}

/**
 * `types` with each array that is empty here or in `other` reduced to "array": one side may hold items the
 * other has not yet. Arrays both sides fill compare their items.
 */
function widen(types: unknown, other: unknown): unknown {
  if (Array.isArray(types))
    return types[0] === "empty" || !Array.isArray(other) || other[0] === "empty"
      ? "array"
      : [widen(types[0], other[0])];
  if (types && typeof types === "object")
    return Object.fromEntries(
      Object.entries(types).map(([key, field]) => [key, widen(field, (other as Record<string, unknown>)?.[key])]),
    );
  return types;
}

/** The same fields with the same BSON types, recursively, array items included. */
function assertSameTypes(written: Document, layra: Document, what: string) {
  const [ours, theirs] = [bsonTypes(written), bsonTypes(layra)];
  assert.deepEqual(widen(ours, theirs), widen(theirs, ours), `${what}: fields and BSON types`);
}

async function run<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
  const result = await gw.query<T>(query, { token, variables });
  assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  assert.ok(result.data, "the response has data");
  return result.data;
}

/** Raw documents as the driver reads them without promoting numbers, so Int32, Long and Double stay apart. */
const raw = { promoteValues: false } as const;
const iso = (value: unknown) => (value as Date).toISOString();
/** LAYRA's stored 100-year presigned URLs: the gateway never hands them out. */
const storedUrls = (text: string) =>
  [knowledgeBase.file.minio_url, ...(knowledgeBase.file.images as Document[]).map((page) => page.minio_url)].filter(
    (url) => text.includes(String(url)),
  );

describe("reads of what LAYRA wrote", () => {
  before(async () => {
    await collection(gw, "knowledge_bases").insertMany([
      { ...knowledgeBase.afterIngestion },
      { ...conversation.temporaryBase },
    ]);
    await collection(gw, "files").insertOne({ ...knowledgeBase.file });
    await collection(gw, "conversations").insertOne({ ...conversation.conversation });
    await collection(gw, "model_config").insertOne({ ...modelConfig });
    await collection(gw, "workflows").insertOne({ ...workflow.workflow });
    await collection(gw, "chatflows").insertOne({ ...workflow.chatflow });
  });

  test("a knowledge base, its file and the file's page images", async () => {
    const kb = knowledgeBase.afterIngestion;
    const stored = knowledgeBase.file;
    const pages = stored.images as Document[];
    assert.ok(pages.length >= 2, "the captured upload has several pages");
    const query = `query ($id: String!, $fileId: String!) {
      knowledgeBase(knowledgeBaseId: $id) { knowledgeBaseId name isTemporary createdAt lastModifiedAt fileCount
        files(first: 10) { totalCount edges { node { fileId } } } }
      file(fileId: $fileId) { fileId filename knowledgeBaseId createdAt lastModifiedAt pageCount url
        pages(first: 10) { imageId pageNumber url } }
    }`;
    type Read = {
      knowledgeBase: Record<string, unknown> & { files: { totalCount: number; edges: { node: { fileId: string } }[] } };
      file: Record<string, unknown> & { pages: { imageId: string; pageNumber: number; url: string }[]; url: string };
    };
    const text = JSON.stringify(
      await run<Read>(query, { id: kb.knowledge_base_id, fileId: stored.file_id }).then((data) => {
        assert.deepEqual(
          { ...data.knowledgeBase, files: undefined },
          {
            knowledgeBaseId: kb.knowledge_base_id,
            name: kb.knowledge_base_name,
            isTemporary: false,
            createdAt: iso(kb.created_at),
            lastModifiedAt: iso(kb.last_modify_at),
            fileCount: 1,
            files: undefined,
          },
        );
        assert.deepEqual(
          data.knowledgeBase.files.edges.map((edge) => edge.node.fileId),
          [stored.file_id],
        );
        const { pages: readPages, url, ...fields } = data.file;
        assert.deepEqual(fields, {
          fileId: stored.file_id,
          filename: stored.filename,
          knowledgeBaseId: stored.knowledge_db_id,
          createdAt: iso(stored.created_at),
          lastModifiedAt: iso(stored.last_modify_at),
          pageCount: pages.length,
        });
        assert.match(url, /^http/, "the original gets a fresh URL");
        assert.deepEqual(
          readPages.map(({ imageId, pageNumber }) => ({ imageId, pageNumber })),
          pages.map((page) => ({ imageId: page.images_id, pageNumber: Number(page.page_number) })),
        );
        return data;
      }),
    );
    assert.deepEqual(storedUrls(text), [], "no stored presigned URL is handed out");
  });

  test("the task hash LAYRA's upload wrote, followed over taskProgress until its consumer's final write", async () => {
    const { afterUpload, afterIngestion } = upload.task;
    assert.equal(afterIngestion.key, afterUpload.key, "one key for the whole upload");
    const taskId = afterUpload.key.replace(/^task:/, "");
    const taskDb = redisClient(gw.config, "task");
    const client = wsClient(gw.url, token);
    const sub = wsSubscribe<{ taskProgress: Record<string, unknown> }>(
      client,
      `subscription ($taskId: String!) { taskProgress(taskId: $taskId) {
        taskId status total processed percent message currentFile end } }`,
      { taskId },
    );
    try {
      await taskDb.hset(afterUpload.key, afterUpload.hash);
      await taskDb.expire(afterUpload.key, afterUpload.ttl);
      await eventually(
        () => sub.results.some((result) => result.data?.taskProgress.status === "processing"),
        "the upload's state is read",
      );
      await taskDb.hset(afterIngestion.key, afterIngestion.hash);
      await sub.whenEnded(60_000);
      assert.equal(sub.error, null);
      const events = sub.results.map((result) => {
        assert.equal(result.errors, undefined, JSON.stringify(result.errors));
        return result.data!.taskProgress;
      });
      const event = (hash: Record<string, string>, end: string | null) => ({
        taskId,
        status: hash.status,
        total: Number(hash.total),
        processed: Number(hash.processed),
        percent: (Number(hash.processed) / Number(hash.total)) * 100,
        message: hash.message,
        currentFile: null,
        end,
      });
      assert.deepEqual(
        events.filter((read) => read.status !== null),
        [event(afterUpload.hash, null), event(afterIngestion.hash, "COMPLETED")],
      );
    } finally {
      sub.close();
      await client.dispose();
      await taskDb.del(afterUpload.key);
      taskDb.disconnect();
    }
  });

  test("a conversation with a cited page, a chat upload's temporary base and an aborted answer", async () => {
    const stored = conversation.conversation;
    const turns = stored.turns as Document[];
    const settings = stored.model_config as Document;
    const data = await run<{
      conversation: Record<string, unknown> & {
        modelSettings: Record<string, unknown>;
        turns: { totalCount: number; edges: { node: Record<string, unknown> }[] };
      };
    }>(
      `query ($id: String!) { conversation(conversationId: $id) { conversationId name isRead createdAt lastModifiedAt
        modelSettings { modelName modelUrl apiKeyHint systemPrompt temperature maxLength topP topK scoreThreshold
          baseUsed { name baseId } }
        turns(first: 10) { totalCount edges { node { messageId parentMessageId userText
          userMessageParts { type text imageUrl } aiMessage status timestamp totalTokens completionTokens promptTokens
          tempKnowledgeBase { knowledgeBaseId isTemporary name }
          retrievedPages { score knowledgeBaseId fileName } } } } } }`,
      { id: stored.conversation_id },
    );
    const read = data.conversation;
    assert.equal(read.conversationId, stored.conversation_id);
    assert.equal(read.name, stored.conversation_name);
    assert.equal(read.isRead, stored.is_read);
    assert.equal(read.createdAt, iso(stored.created_at));
    assert.equal(read.lastModifiedAt, iso(stored.last_modify_at));
    assert.deepEqual(read.modelSettings, {
      modelName: settings.model_name,
      modelUrl: settings.model_url,
      apiKeyHint: read.modelSettings.apiKeyHint,
      systemPrompt: settings.system_prompt,
      temperature: Number(settings.temperature),
      maxLength: Number(settings.max_length),
      topP: Number(settings.top_P),
      topK: Number(settings.top_K),
      scoreThreshold: Number(settings.score_threshold),
      baseUsed: settings.base_used,
    });
    assert.ok(!JSON.stringify(read).includes(String(settings.api_key)), "the API key is not in the answer");
    assert.equal(read.turns.totalCount, turns.length);
    const expected = turns.map((turn) => {
      const user = turn.user_message as { content: { type: string; text?: string; image_url?: string }[] };
      const fileUsed = turn.file_used as Document[];
      return {
        messageId: turn.message_id,
        parentMessageId: turn.parent_message_id || null,
        userText: user.content.filter((part) => part.type === "text").at(-1)?.text,
        userMessageParts: user.content.map((part) => ({ type: part.type, text: part.text ?? null })),
        aiMessage: (turn.ai_message as Document).content,
        status: turn.status,
        timestamp: iso(turn.timestamp),
        totalTokens: Number(turn.total_token),
        completionTokens: Number(turn.completion_tokens),
        promptTokens: Number(turn.prompt_tokens),
        tempKnowledgeBase: turn.temp_db
          ? {
              knowledgeBaseId: conversation.temporaryBase.knowledge_base_id,
              isTemporary: true,
              name: conversation.temporaryBase.knowledge_base_name,
            }
          : null,
        retrievedPages: fileUsed.map((page) => ({
          score: Number(page.score),
          knowledgeBaseId: page.knowledge_db_id,
          fileName: page.file_name,
        })),
      };
    });
    const readTurns = read.turns.edges.map((edge) => edge.node);
    const parts = readTurns.flatMap(
      (turn) => turn.userMessageParts as { type: string; text: string; imageUrl: string }[],
    );
    assert.deepEqual(
      readTurns.map((turn) => ({
        ...turn,
        userMessageParts: (turn.userMessageParts as Document[]).map((part) => ({ type: part.type, text: part.text })),
      })),
      expected,
    );
    // An image part names a page by its object key; the gateway answers a fresh URL for that key.
    const imageKeys = turns.flatMap((turn) =>
      (turn.user_message as { content: { image_url?: string }[] }).content.flatMap((part) => part.image_url ?? []),
    );
    assert.equal(imageKeys.length, 1, "the capture cites one page");
    assert.deepEqual(
      parts
        .filter((part) => part.type === "image_url")
        .map((part) => new URL(part.imageUrl).pathname.split("/").at(-1)),
      imageKeys,
    );
    assert.ok(
      expected.some((turn) => turn.retrievedPages.length > 0) && expected.some((turn) => turn.tempKnowledgeBase),
      "the capture has a cited page and a temporary base",
    );
  });

  test("a model config: the registration default (int32 -1 everywhere) and an added model using a base", async () => {
    const models = modelConfig.models as Document[];
    const data = await run<{ me: { modelConfig: { selectedModelId: string; models: Record<string, unknown>[] } } }>(
      `{ me { modelConfig { selectedModelId models { modelId modelName modelUrl apiKeyHint systemPrompt temperature
        maxLength topP topK scoreThreshold baseUsed { name baseId } } } } }`,
    );
    assert.equal(data.me.modelConfig.selectedModelId, modelConfig.selected_model);
    assert.deepEqual(
      data.me.modelConfig.models,
      models.map((model) => ({
        modelId: model.model_id,
        modelName: model.model_name,
        modelUrl: model.model_url,
        apiKeyHint: data.me.modelConfig.models.find((read) => read.modelId === model.model_id)?.apiKeyHint,
        systemPrompt: model.system_prompt,
        temperature: Number(model.temperature),
        maxLength: Number(model.max_length),
        topP: Number(model.top_P),
        topK: Number(model.top_K),
        scoreThreshold: Number(model.score_threshold),
        baseUsed: model.base_used,
      })),
    );
    for (const model of models)
      assert.ok(!JSON.stringify(data).includes(String(model.api_key)), `${String(model.model_id)}'s key is not shown`);
  });

  test("a workflow as the editor saved it, and its chatflow's turn", async () => {
    const stored = workflow.workflow;
    const chatflow = workflow.chatflow;
    const turn = (chatflow.turns as Document[])[0]!;
    const data = await run<{ workflow: Record<string, unknown> & { chatflows: { edges: { node: Document }[] } } }>(
      `query ($id: String!) { workflow(workflowId: $id) { workflowId name config nodes edges globalVariables startNode
        createdAt lastModifiedAt chatflows(first: 5) { edges { node { chatflowId name workflowId isRead createdAt
          turns(first: 5) { edges { node { messageId userText aiMessage status totalTokens } } } } } } } }`,
      { id: stored.workflow_id },
    );
    const { chatflows, ...fields } = data.workflow;
    // EJSON gives the nodes' numbers as Int32/Double objects; the JSON scalar answers plain numbers.
    const plain = (value: unknown) => EJSON.deserialize(EJSON.serialize(value), { relaxed: true });
    assert.deepEqual(fields, {
      workflowId: stored.workflow_id,
      name: stored.workflow_name,
      config: plain(stored.workflow_config),
      nodes: plain(stored.nodes),
      edges: plain(stored.edges),
      globalVariables: plain(stored.global_variables),
      startNode: stored.start_node,
      createdAt: iso(stored.created_at),
      lastModifiedAt: iso(stored.last_modify_at),
    });
    assert.deepEqual(
      chatflows.edges.map((edge) => edge.node),
      [
        {
          chatflowId: chatflow.chatflow_id,
          name: chatflow.chatflow_name,
          workflowId: stored.workflow_id,
          isRead: chatflow.is_read,
          createdAt: iso(chatflow.created_at),
          turns: {
            edges: [
              {
                node: {
                  messageId: turn.message_id,
                  userText: (turn.user_message as { content: { text: string }[] }).content[0]!.text,
                  aiMessage: (turn.ai_message as Document).content,
                  status: "",
                  totalTokens: Number(turn.total_token),
                },
              },
            ],
          },
        },
      ],
    );
  });
});

describe("LAYRA's Kafka message, consumed by the gateway's worker", () => {
  test("the worker ingests it into the documents and task hash LAYRA's own consumer wrote", async () => {
    const { message } = upload;
    assert.equal(message.key, null, "LAYRA sends no key");
    assert.deepEqual(
      message.headers.map(([name, value]) => [name, Buffer.from(value, "base64").toString()]),
      [["priority", "1"]],
    );
    const value = Buffer.from(message.value, "base64");
    const sent = JSON.parse(value.toString()) as { file_meta: { minio_filename: string; file_id: string } };
    // Its own gateway (database, bucket, topic, group), left as LAYRA's upload endpoint leaves things:
    // the base as created, the task hash as first written, the original in the bucket.
    const overrides = ingestOverrides();
    const ingest = await startGateway(shared.env, overrides);
    const taskDb = redisClient(ingest.config, "task");
    const kafka = createKafkaStore(ingest.config);
    let stopWorkers: (() => Promise<unknown>) | undefined;
    const { afterUpload, afterIngestion } = upload.task;
    try {
      await createTopic(ingest.config, 1);
      await collection(ingest, "knowledge_bases").insertOne({ ...knowledgeBase.created });
      // The reads above followed the same key to its completed state.
      await taskDb.del(afterUpload.key);
      await taskDb.hset(afterUpload.key, afterUpload.hash);
      await taskDb.expire(afterUpload.key, afterUpload.ttl);
      await ingest.app.stores.s3.putObject(sent.file_meta.minio_filename, pdf, "application/pdf");
      await kafka.produce([
        {
          value,
          headers: Object.fromEntries(message.headers.map(([k, v]) => [k, Buffer.from(v, "base64").toString()])),
        },
      ]);
      stopWorkers = await startWorkers(ingest, shared.env, overrides);
      await eventually(
        async () => (await taskDb.hget(afterUpload.key, "status")) !== "processing",
        "the worker finishes the task",
        180_000,
      );
      // LAYRA's four fields as its consumer leaves them; besides them only the gateway's documented progress
      // fields (docs/ingestion.md, "Progress"), which LAYRA's reader ignores.
      const hash = await taskDb.hgetall(afterIngestion.key);
      const layraFields = Object.keys(afterIngestion.hash);
      assert.deepEqual(Object.fromEntries(layraFields.map((field) => [field, hash[field]])), afterIngestion.hash);
      assert.deepEqual(
        Object.keys(hash)
          .filter((field) => !layraFields.includes(field))
          .sort(),
        ["current_file", `file:${sent.file_meta.file_id}`, "file_pages_done", "file_pages_total"],
      );
      const ttl = await taskDb.ttl(afterIngestion.key);
      assert.ok(ttl > 0 && ttl <= 3600, `the task keeps LAYRA's one-hour expiry (${ttl})`);

      const written = await collection(ingest, "files").findOne({ file_id: sent.file_meta.file_id }, raw);
      assert.ok(written, "the worker wrote the file document");
      const layraFile = knowledgeBase.file;
      assertSameTypes(written, layraFile, "files");
      for (const field of [
        "file_id",
        "filename",
        "username",
        "minio_filename",
        "minio_url",
        "knowledge_db_id",
        "is_delete",
      ])
        assert.deepEqual(written[field], layraFile[field], `files.${field}`);
      const pageNumbers = (file: Document) => (file.images as Document[]).map((page) => Number(page.page_number));
      assert.deepEqual(pageNumbers(written), pageNumbers(layraFile), "page numbers, from 1");
      // Page keys: LAYRA's `{username}_{basename}_{ObjectId}.png`, whatever the ObjectId.
      const keyShape = (file: Document) =>
        (file.images as Document[]).map((page) =>
          String(page.minio_filename).replace(/_[0-9a-f]{24}\.png$/, "_{oid}.png"),
        );
      assert.deepEqual(keyShape(written), keyShape(layraFile));
      assert.ok(
        keyShape(layraFile).every((key) => key.endsWith("_{oid}.png")),
        "LAYRA's keys have the shape",
      );

      const base = await collection(ingest, "knowledge_bases").findOne(
        { knowledge_base_id: knowledgeBase.created.knowledge_base_id },
        raw,
      );
      assert.ok(base, "the base is still there");
      assertSameTypes(base, knowledgeBase.afterIngestion, "knowledge_bases after ingestion");
      const [reference] = base.files as Document[];
      const [layraReference] = knowledgeBase.afterIngestion.files as Document[];
      for (const field of ["file_id", "filename", "minio_filename", "minio_url"])
        assert.deepEqual(reference![field], layraReference![field], `knowledge_bases.files.${field}`);
    } finally {
      await stopWorkers?.();
      // What the worker wrote besides Mongo, which closing the gateway drops.
      const file = await collection(ingest, "files").findOne({ file_id: sent.file_meta.file_id });
      const pageKeys = ((file?.images ?? []) as Document[]).map((page) => String(page.minio_filename));
      await ingest.app.stores.s3.removeObjects([sent.file_meta.minio_filename, ...pageKeys]);
      await ingest.app.stores.milvus.dropCollection(String(knowledgeBase.created.knowledge_base_id));
      await taskDb.del(afterUpload.key);
      await kafka.close();
      taskDb.disconnect();
      await ingest.close();
    }
  });
});

describe("what the gateway writes, next to what LAYRA wrote", () => {
  const writer = "gatewayuser";
  let writerToken: string;
  before(async () => {
    writerToken = await gw.token(writer);
  });
  async function write<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const result = await gw.query<T>(query, { token: writerToken, variables });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    assert.ok(result.data, "the response has data");
    return result.data;
  }
  const stored = async (name: string, filter: Document) => {
    const doc = await collection(gw, name).findOne(filter, raw);
    assert.ok(doc, `${name} ${JSON.stringify(filter)} was written`);
    return doc;
  };

  test("a knowledge base", async () => {
    const data = await write<{ createKnowledgeBase: { knowledgeBaseId: string } }>(
      `mutation { createKnowledgeBase(name: "Written here") { knowledgeBaseId } }`,
    );
    const doc = await stored("knowledge_bases", { knowledge_base_id: data.createKnowledgeBase.knowledgeBaseId });
    assertSameTypes(doc, knowledgeBase.created, "knowledge_bases");
    assert.deepEqual([doc.files, doc.used_chat, doc.is_delete], [[], [], false]);
  });

  test("a model, and a conversation snapshotting it, with a turn", async () => {
    const layraModel = (modelConfig.models as Document[]).find(
      (model) => model.model_id === modelConfig.selected_model,
    )!;
    const base = await write<{ createKnowledgeBase: { knowledgeBaseId: string } }>(
      `mutation { createKnowledgeBase(name: "Used") { knowledgeBaseId } }`,
    );
    const settings = {
      modelName: "qwen-max",
      modelUrl: "https://dashscope.aliyuncs.com/compatible-mode/v1",
      apiKey: "sk-written-here",
      baseUsed: [{ name: "Used", baseId: base.createKnowledgeBase.knowledgeBaseId }],
      systemPrompt: "Answer from the reports.",
      temperature: 0.7,
      maxLength: 4096,
      topP: 1,
      topK: 3,
      scoreThreshold: 10,
    };
    const added = await write<{ addModel: { modelId: string } }>(
      `mutation ($input: ModelSettingsInput!) { addModel(input: $input) { modelId } }`,
      { input: settings },
    );
    const config = await stored("model_config", { username: writer });
    const model = (config.models as Document[]).find((entry) => entry.model_id === added.addModel.modelId);
    assert.ok(model, "the added model is stored");
    assertSameTypes(model, layraModel, "model_config.models[]");

    const created = await write<{ createConversation: { conversationId: string } }>(
      `mutation ($input: ModelSettingsInput) { createConversation(name: "Written here", modelSettings: $input) { conversationId } }`,
      { input: settings },
    );
    const id = created.createConversation.conversationId;
    assertSameTypes(await stored("conversations", { conversation_id: id }), conversation.conversation, "conversations");

    const layraTurn = (conversation.conversation.turns as Document[])[0]!;
    const cited = (layraTurn.file_used as Document[])[0]!;
    const pageKey = `${writer}_report_6b16567d1d418ec5f4cc6d51.png`;
    await write(
      `mutation ($id: String!, $input: AddTurnInput!) { addTurn(conversationId: $id, input: $input) { messageId } }`,
      {
        id,
        input: {
          userMessage: "What grew last quarter?",
          imageKeys: [pageKey],
          aiMessage: "Revenue grew.",
          fileUsed: [
            {
              score: 17.25,
              knowledgeDbId: base.createKnowledgeBase.knowledgeBaseId,
              fileName: cited.file_name,
              imageUrl: gw.app.stores.s3.presignGet(pageKey),
              fileUrl: gw.app.stores.s3.presignGet(`${writer}_report_6b16567c1d418ec5f4cc6d4f.pdf`),
            },
          ],
          totalToken: 1234,
          completionTokens: 34,
          promptTokens: 1200,
        },
      },
    );
    const withTurn = await stored("conversations", { conversation_id: id });
    const [turn] = withTurn.turns as Document[];
    assert.ok(turn, "the turn is stored");
    assertSameTypes(turn, layraTurn, "conversations.turns[]");
    assertSameTypes(
      (turn.user_message as { content: Document[] }).content[0]!,
      (layraTurn.user_message as { content: Document[] }).content[0]!,
      "an image part",
    );
    assertSameTypes((turn.file_used as Document[])[0]!, cited, "conversations.turns[].file_used[]");
  });

  test("a workflow and a chatflow of it", async () => {
    const layra = workflow.workflow;
    const saved = await write<{ saveWorkflow: { workflowId: string } }>(
      `mutation ($input: SaveWorkflowInput!) { saveWorkflow(input: $input) { workflowId } }`,
      {
        input: {
          name: "Written here",
          config: { docker_image_use: "python-sandbox:latest" },
          startNode: "node_start",
          globalVariables: { limit: "3" },
          nodes: [{ id: "node_start", type: "start", position: { x: 0, y: 0 }, data: { name: "Start" } }],
          edges: [],
        },
      },
    );
    const workflowId = saved.saveWorkflow.workflowId;
    const doc = await stored("workflows", { workflow_id: workflowId });
    assertSameTypes(
      { ...doc, nodes: [], global_variables: {} },
      { ...layra, nodes: [], global_variables: {} },
      "workflows (nodes and variables are the editor's JSON)",
    );
    const chatflow = await write<{ createChatflow: { chatflowId: string } }>(
      `mutation ($id: String!) { createChatflow(workflowId: $id, name: "Written here") { chatflowId } }`,
      { id: workflowId },
    );
    assertSameTypes(
      await stored("chatflows", { chatflow_id: chatflow.createChatflow.chatflowId }),
      workflow.chatflow,
      "chatflows",
    );
  });

  test("an upload's task hash and Kafka message", async () => {
    const base = await write<{ createKnowledgeBase: { knowledgeBaseId: string } }>(
      `mutation { createKnowledgeBase(name: "Uploads") { knowledgeBaseId } }`,
    );
    const kafka = createKafkaStore(gw.config);
    const consumer = await kafka.consume();
    const taskDb = redisClient(gw.config, "task");
    const written: { taskKey?: string; original?: string } = {};
    try {
      const result = await multipartRequest<{ uploadFiles: { taskId: string; files: { id: string }[] } }>(
        gw,
        writerToken,
        UPLOAD_FILES,
        { knowledgeBaseId: base.createKnowledgeBase.knowledgeBaseId },
        [{ name: "report.pdf", type: "application/pdf", bytes: pdf }],
      );
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      const task = result.data!.uploadFiles;
      const key = `task:${task.taskId}`;
      written.taskKey = key;
      assert.deepEqual(await taskDb.hgetall(key), upload.task.afterUpload.hash);
      const ttl = await taskDb.ttl(key);
      assert.ok(ttl > 0 && ttl <= upload.task.afterUpload.ttl + 1, `LAYRA's one-hour expiry (${ttl})`);

      const iterator = consumer.messages[Symbol.asyncIterator]();
      const next = await Promise.race([
        iterator.next(),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error("no message within 60 s")), 60_000).unref(),
        ),
      ]);
      assert.ok(!next.done, "the gateway queued a message");
      const received = next.value;
      assert.deepEqual(received.headers, { priority: "1" });
      const gatewayMessage = JSON.parse(received.value.toString()) as Record<string, unknown> & {
        file_meta: Record<string, string>;
      };
      written.original = gatewayMessage.file_meta.minio_filename;
      const layraValue = Buffer.from(upload.message.value, "base64").toString();
      const layraMessage = JSON.parse(layraValue) as typeof gatewayMessage;
      assert.deepEqual(bsonTypes(gatewayMessage), bsonTypes(layraMessage), "the same fields, all strings");
      assert.deepEqual(Object.keys(gatewayMessage), Object.keys(layraMessage), "in LAYRA's order");
      assert.deepEqual(Object.keys(gatewayMessage.file_meta), Object.keys(layraMessage.file_meta));
      // Byte for byte: LAYRA's value with its ids swapped for the gateway's.
      let expected = layraValue;
      for (const [field, layraText] of [
        ...Object.entries(layraMessage).filter(([, v]) => typeof v === "string"),
        ...Object.entries(layraMessage.file_meta),
      ] as [string, string][]) {
        const gatewayText = (gatewayMessage[field] ?? gatewayMessage.file_meta[field]) as string;
        expected = expected.replace(JSON.stringify(layraText), JSON.stringify(gatewayText));
      }
      assert.equal(received.value.toString(), expected);
    } finally {
      await consumer.close();
      await kafka.close();
      if (written.taskKey) await taskDb.del(written.taskKey);
      if (written.original) await gw.app.stores.s3.removeObjects([written.original]);
      taskDb.disconnect();
    }
  });
});

test("the fixtures come from the LAYRA commit docs/layra-contract.md names", () => {
  const { layraCommit } = JSON.parse(readFileSync(join(dir, "source.json"), "utf8")) as { layraCommit: string };
  const contract = readFileSync(resolve(import.meta.dirname, "../docs/layra-contract.md"), "utf8");
  assert.match(layraCommit, /^[0-9a-f]{40}$/);
  assert.ok(contract.includes(`\`${layraCommit}\``), `docs/layra-contract.md names ${layraCommit}`);
});

test("a message of names outside ASCII is the bytes Python's json.dumps, LAYRA's producer call, makes", () => {
  // The captured upload's names are ASCII; this one has every kind of character json.dumps escapes.
  const message = {
    task_id: "layrauser_0b605aab-0b0c-4192-b39e-04b5c75d0e1d",
    username: "layrauser",
    knowledge_db_id: "layrauser_5858507d-47d7-476d-b938-70e270e64b59",
    file_meta: {
      file_id: "layrauser_e1945436-06b1-418f-b198-9afc7f2b3800",
      minio_filename: 'layrauser_Bericht Ü "Q3" \\ \u007f\t\u0001 📈_6b165a5afcdabbb661ad858d.pdf',
      original_filename: 'Bericht Ü "Q3" \\ \u007f\t\u0001 📈.pdf',
      minio_url: "http://localhost/minio-file/layrauser_Bericht%20%C3%9C.pdf?X-Amz-Signature=ab",
    },
  };
  const python = join(
    process.env.LAYRA_STACK_CACHE ?? resolve(import.meta.dirname, "../.stack"),
    "layra-venv/bin/python",
  );
  const dumped = spawnSync(
    python,
    ["-c", "import json, sys; sys.stdout.write(json.dumps(json.loads(sys.stdin.read())))"],
    {
      input: JSON.stringify(message),
      encoding: "utf8",
    },
  );
  assert.equal(dumped.stderr, "");
  assert.match(dumped.stdout, /\\u00dc.*\\ud83d\\udcc8/, "Python escaped the name");
  assert.equal(encodeEmbeddingMessage(message).value.toString(), dumped.stdout);
});

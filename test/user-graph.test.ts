// The read side: the whole user profile in one query, ownership on every entry point, Relay
// pagination with typed bad-input errors, and a fixed number of Mongo commands per query.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import type { CommandStartedEvent, CommandSucceededEvent } from "mongodb";
import type { ChatflowDoc, FileDoc, KnowledgeBaseDoc } from "../src/stores/documents.js";
import { encodeGlobalId } from "../src/schema/global-id.js";
import { defaultSettings, LayraWriter, layraId, layraTurn, storedUrl } from "../dev/layra-writer.js";
import { sharedStackEnv, startGateway, type TestGateway } from "./helpers.js";
import { MongoWireCounter } from "./fixtures/mongo-wire-counter.js";
import { mongoCollections } from "../src/stores/mongo.js";

let shared: Awaited<ReturnType<typeof sharedStackEnv>>;
let gateway: TestGateway;
let writer: LayraWriter;
let alice: string;
let bob: string;
const ids: Record<string, string> = {};

const PROFILE = `query Profile($first: Int) {
  me {
    username
    modelConfig { selectedModelId selectedModel { modelId modelName apiKeyHint baseUsed { baseId knowledgeBase { name } } } models { modelId } }
    customNodes { name definition }
    knowledgeBases(first: $first) {
      totalCount
      edges { cursor node { id knowledgeBaseId name isTemporary createdAt lastModifiedAt fileCount
        files(first: 100) { totalCount edges { node { id fileId filename url pageCount createdAt pages { id imageId pageNumber url } } } } } }
    }
    conversations(first: $first) { totalCount edges { node { id conversationId name modelSettings { modelName apiKeyHint }
      turns { totalCount edges { node { messageId parentMessageId userText aiMessage timestamp status totalTokens
        userMessageParts { type text imageUrl } retrievedPages { score fileName imageUrl fileUrl }
        tempKnowledgeBase { knowledgeBaseId isTemporary } uploadedFiles { filename url } } } } } } }
    chatflows { totalCount edges { node { chatflowId name workflow { workflowId } turns { totalCount } } } }
    workflows(first: $first) { totalCount edges { node { id workflowId name config nodes edges startNode globalVariables
      chatflows { totalCount edges { node { chatflowId } } } } } }
  }
}`;

before(async () => {
  shared = await sharedStackEnv();
  // The whole profile with 100 files per knowledge base costs far more than the default limit
  // (50,000); an operator serving such a client raises GRAPHQL_MAX_COST, as here.
  gateway = await startGateway(shared.env, { GRAPHQL_MAX_COST: "10000000" });
  writer = new LayraWriter(gateway.app.stores, shared.env.MODEL_SERVER_URL!);
  for (const user of ["alice", "bob"]) {
    const kb = await writer.createKnowledgeBase(user, `${user} manuals`);
    await writer.registerUser(user, {
      api_key: `sk-${user}-secret-key-9876`,
      base_used: [{ name: kb.knowledge_base_name, baseId: kb.knowledge_base_id }],
    });
    const file = await writer.ingestFile(user, kb.knowledge_base_id, {
      filename: "Guide (v2).pdf",
      pages: [{ text: "router reset" }, { text: "wifi password" }],
    });
    await writer.ingestFile(user, kb.knowledge_base_id, { filename: "GuideXv2.pdf", pages: [{ text: "other" }] });
    const conversationId = layraId(user);
    const temp = await writer.createKnowledgeBase(user, `temp_base_${user}`, {
      id: `temp_${conversationId}_${randomUUID()}`,
      temp: true,
    });
    const upload = await writer.ingestFile(user, temp.knowledge_base_id, {
      filename: "upload.png",
      pages: [{ text: "upload" }],
    });
    const page = file.images[0]!;
    const root = layraTurn("How do I reset?", {
      pageKey: page.minio_filename,
      fileUsed: [
        {
          score: 12.5,
          knowledge_db_id: kb.knowledge_base_id,
          file_name: file.filename,
          image_url: page.minio_url,
          file_url: file.minio_url,
        },
      ],
    });
    const child = layraTurn("And the attachment?", { parent: root.message_id, tempDb: temp.knowledge_base_id });
    const conversation = await writer.createConversation(
      user,
      `${user} chat`,
      [root, child],
      defaultSettings({ api_key: "sk-snapshot-key-1111" }),
    );
    await mongoCollections(gateway.app.stores.mongo.db).conversations.updateOne(
      { conversation_id: conversation.conversation_id },
      { $set: { conversation_id: conversationId } },
    );
    const workflow = await writer.createWorkflow(user, `${user} flow`);
    const chatflow = await writer.createChatflow(user, workflow.workflow_id, `${user} chatflow`, [
      layraTurn("flow question"),
    ]);
    await writer.saveCustomNode(user, "summarise", { data: { nodeType: "vlm", prompt: "Summarise {{text}}" } });
    Object.assign(ids, {
      [`${user}.kb`]: kb.knowledge_base_id,
      [`${user}.temp`]: temp.knowledge_base_id,
      [`${user}.file`]: file.file_id,
      [`${user}.upload`]: upload.file_id,
      [`${user}.page`]: page.images_id,
      [`${user}.conversation`]: conversationId,
      [`${user}.workflow`]: workflow.workflow_id,
      [`${user}.chatflow`]: chatflow.chatflow_id,
    });
  }
  alice = await gateway.token("alice");
  bob = await gateway.token("bob");
});
after(async () => {
  await gateway.close();
  await shared.close();
});

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

test("the whole profile in one query, in LAYRA's real shapes", async () => {
  const result = await gateway.query<{ me: Json }>(PROFILE, { token: alice });
  assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  const me = result.data!.me;
  assert.equal(me.username, "alice");
  assert.equal(me.modelConfig.selectedModel.apiKeyHint, "…9876", "only the last four characters of the API key");
  assert.ok(!JSON.stringify(result).includes("sk-alice-secret-key"), "the API key never appears");
  assert.equal(me.modelConfig.selectedModel.baseUsed[0].knowledgeBase.name, "alice manuals");
  assert.deepEqual(me.customNodes, [
    { name: "summarise", definition: { data: { nodeType: "vlm", prompt: "Summarise {{text}}" } } },
  ]);

  assert.equal(me.knowledgeBases.totalCount, 1, "the temp knowledge base stays out of the list");
  const kb = me.knowledgeBases.edges[0].node;
  assert.equal(kb.knowledgeBaseId, ids["alice.kb"]);
  assert.equal(kb.isTemporary, false);
  assert.match(kb.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(kb.files.totalCount, 2);
  const file = kb.files.edges.find((edge: Json) => edge.node.fileId === ids["alice.file"]).node;
  assert.deepEqual(
    file.pages.map((p: Json) => p.pageNumber),
    [1, 2],
    "1-based page numbers",
  );
  assert.ok(!JSON.stringify(result).includes("192.168.1.5"), "stored URLs are never returned");
  for (const url of [file.url, ...file.pages.map((p: Json) => p.url)]) {
    assert.match(url, /X-Amz-Expires=900/);
    assert.equal((await fetch(url)).status, 200, "presigned URLs fetch the object");
  }

  const conversation = me.conversations.edges[0].node;
  assert.equal(conversation.conversationId, ids["alice.conversation"]);
  assert.equal(conversation.modelSettings.apiKeyHint, "…1111");
  const [root, child] = conversation.turns.edges.map((edge: Json) => edge.node);
  assert.equal(root.parentMessageId, null);
  assert.equal(child.parentMessageId, root.messageId);
  assert.equal(root.userText, "How do I reset?");
  assert.equal(root.userMessageParts[0].type, "image_url");
  assert.equal(
    (await fetch(root.userMessageParts[0].imageUrl)).status,
    200,
    "the turn's page image key is presigned fresh",
  );
  assert.equal(root.retrievedPages[0].score, 12.5);
  assert.equal((await fetch(root.retrievedPages[0].imageUrl)).status, 200);
  assert.equal((await fetch(root.retrievedPages[0].fileUrl)).status, 200);
  assert.deepEqual(
    child.tempKnowledgeBase,
    { knowledgeBaseId: ids["alice.temp"], isTemporary: true },
    "temp KB reachable from its turn",
  );
  assert.deepEqual(
    child.uploadedFiles.map((f: Json) => f.filename),
    ["upload.png"],
  );

  assert.equal(me.chatflows.totalCount, 1);
  assert.equal(me.chatflows.edges[0].node.workflow.workflowId, ids["alice.workflow"]);
  const workflow = me.workflows.edges[0].node;
  assert.deepEqual(workflow.globalVariables, { answer: "'42'" });
  assert.equal(workflow.startNode, "node_start");
  assert.deepEqual(
    workflow.chatflows.edges.map((e: Json) => e.node.chatflowId),
    [ids["alice.chatflow"]],
  );
});

test("the filename keyword is matched literally, never as a regex", async () => {
  const files = async (keyword: string) => {
    const result = await gateway.query<{ knowledgeBase: Json }>(
      `query($id: String!, $k: String) { knowledgeBase(knowledgeBaseId: $id) { files(keyword: $k) { totalCount edges { node { filename } } } } }`,
      { token: alice, variables: { id: ids["alice.kb"], k: keyword } },
    );
    assert.equal(result.errors, undefined);
    return result.data!.knowledgeBase.files.edges.map((e: Json) => e.node.filename);
  };
  assert.deepEqual(await files("guide (v2)"), ["Guide (v2).pdf"]);
  assert.deepEqual(await files("e.v"), [], "`.` is not a wildcard");
  assert.deepEqual(await files("(.*"), []);
  assert.deepEqual((await files("GUIDE")).sort(), ["Guide (v2).pdf", "GuideXv2.pdf"]);
});

test("me.files lists the files of all the caller's knowledge bases, keyword matched literally, temp uploads left out", async () => {
  // With the listed knowledge-base ids read for it, or taken from the knowledge bases the same
  // query listed whole: both answer the same.
  const files = async (token: string, keyword?: string, args = "") => {
    const answers = [];
    for (const withList of [false, true]) {
      const result = await gateway.query<{ me: Json }>(
        `query($k: String) { me { ${withList ? "knowledgeBases(first: 100) { totalCount }" : ""}
          files(keyword: $k${args}) { totalCount pageInfo { hasNextPage endCursor }
            edges { node { fileId filename knowledgeBaseId pageCount } } } } }`,
        { token, variables: { k: keyword } },
      );
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      answers.push(result.data!.me.files);
    }
    assert.deepEqual(answers[1], answers[0], "from the listed knowledge bases as from Mongo");
    return answers[0];
  };
  const all = await files(alice);
  assert.equal(all.totalCount, 2, "the two files of alice's knowledge base; the temp upload is left out");
  assert.ok(all.edges.every((e: Json) => e.node.knowledgeBaseId === ids["alice.kb"]));
  assert.deepEqual(
    (await files(alice, "guide (v2)")).edges.map((e: Json) => e.node.filename),
    ["Guide (v2).pdf"],
  );
  assert.equal((await files(alice, "e.v")).totalCount, 0, "`.` is not a wildcard");
  assert.equal((await files(alice, "(.*")).totalCount, 0);
  const [newest, older] = all.edges.map((edge: Json) => edge.node.fileId);
  const firstPage = await files(alice, undefined, ", first: 1");
  assert.deepEqual(
    [firstPage.totalCount, firstPage.pageInfo.hasNextPage, firstPage.edges[0].node.fileId],
    [2, true, newest],
  );
  const secondPage = await files(alice, undefined, `, first: 1, after: "${firstPage.pageInfo.endCursor}"`);
  assert.deepEqual(
    [secondPage.totalCount, secondPage.pageInfo.hasNextPage, secondPage.edges[0].node.fileId],
    [2, false, older],
  );
  const bobs = await files(bob);
  assert.equal(bobs.totalCount, 2);
  assert.ok(
    bobs.edges.every((e: Json) => e.node.knowledgeBaseId === ids["bob.kb"]),
    "bob sees only his own files",
  );
});

test("another user's ids answer exactly like missing ids, on every entry point", async () => {
  const roots: [string, string, string][] = [
    ["knowledgeBase", "knowledgeBaseId", "kb"],
    ["knowledgeBase", "knowledgeBaseId", "temp"],
    ["file", "fileId", "file"],
    ["file", "fileId", "upload"],
    ["conversation", "conversationId", "conversation"],
    ["chatflow", "chatflowId", "chatflow"],
    ["workflow", "workflowId", "workflow"],
  ];
  for (const [field, arg, key] of roots) {
    const query = `query($id: String!) { ${field}(${arg}: $id) { __typename } }`;
    const foreign = await gateway.query(query, { token: bob, variables: { id: ids[`alice.${key}`] } });
    const missing = await gateway.query(query, { token: bob, variables: { id: `bob_${randomUUID()}` } });
    const own = await gateway.query(query, { token: bob, variables: { id: ids[`bob.${key}`] } });
    assert.equal(own.errors, undefined, `${field} works for the owner`);
    assert.deepEqual(foreign.data, { [field]: null });
    assert.equal(foreign.errors?.[0]?.extensions?.code, "NOT_FOUND", `${field}(${key})`);
    assert.equal(
      foreign.errors?.[0]?.message.replace(ids[`alice.${key}`]!, "ID"),
      missing.errors?.[0]?.message.replace(/bob_[0-9a-f-]+/, "ID"),
    );
  }
  const nodeTypes: [string, string][] = [
    ["KnowledgeBase", "kb"],
    ["KnowledgeBase", "temp"],
    ["File", "file"],
    ["PageImage", "page"],
    ["Conversation", "conversation"],
    ["Chatflow", "chatflow"],
    ["Workflow", "workflow"],
  ];
  for (const [type, key] of nodeTypes) {
    const ownId = encodeGlobalId(type, ids[`bob.${key}`]!);
    const foreignId = encodeGlobalId(type, ids[`alice.${key}`]!);
    const result = await gateway.query<{ own: Json; foreign: Json; many: Json[] }>(
      `query($own: ID!, $foreign: ID!) { own: node(id: $own) { id __typename } foreign: node(id: $foreign) { id } many: nodes(ids: [$foreign, $own]) { id } }`,
      { token: bob, variables: { own: ownId, foreign: foreignId } },
    );
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    assert.deepEqual(result.data!.own, { id: ownId, __typename: type });
    assert.equal(result.data!.foreign, null, `node(${type}) of another user is null`);
    assert.deepEqual(result.data!.many, [null, { id: ownId }]);
  }
  const profile = JSON.stringify((await gateway.query(PROFILE, { token: bob })).data);
  for (const [name, id] of Object.entries(ids))
    if (name.startsWith("alice.")) assert.ok(!profile.includes(id), `${name} absent from bob's profile`);
});

test("connections page with cursors; bad arguments are BAD_USER_INPUT naming the argument", async () => {
  const page = (variables: Record<string, unknown>) =>
    gateway.query<{ knowledgeBase: Json }>(
      `query($id: String!, $first: Int, $after: String, $last: Int) { knowledgeBase(knowledgeBaseId: $id) { files(first: $first, after: $after, last: $last) { totalCount pageInfo { hasNextPage endCursor } edges { node { fileId } } } } }`,
      { token: alice, variables: { id: ids["alice.kb"], ...variables } },
    );
  const first = await page({ first: 1 });
  assert.equal(first.data!.knowledgeBase.files.pageInfo.hasNextPage, true);
  const second = await page({ first: 1, after: first.data!.knowledgeBase.files.pageInfo.endCursor });
  assert.equal(second.data!.knowledgeBase.files.pageInfo.hasNextPage, false);
  assert.notDeepEqual(second.data!.knowledgeBase.files.edges, first.data!.knowledgeBase.files.edges);

  const bad: [Record<string, unknown>, string][] = [
    [{ first: 101 }, "first"],
    [{ first: -1 }, "first"],
    [{ last: 500 }, "last"],
    [{ after: "bm9wZQ==" }, "after"],
    [{ after: "!!" }, "after"],
  ];
  for (const [variables, argument] of bad) {
    const result = await page(variables);
    assert.equal(result.errors?.[0]?.extensions?.code, "BAD_USER_INPUT", JSON.stringify(variables));
    assert.equal(result.errors?.[0]?.extensions?.argument, argument);
    assert.match(result.errors[0].message, new RegExp(`^${argument}:`));
  }
  const ok = await page({ first: 100 });
  assert.equal(ok.errors, undefined, "100 is the maximum and is accepted");

  for (const id of [
    "not base64 !",
    Buffer.from("no-colon").toString("base64url"),
    Buffer.from("File:").toString("base64url"),
  ]) {
    const result = await gateway.query(`query($id: ID!) { node(id: $id) { id } }`, { token: alice, variables: { id } });
    assert.equal(result.errors?.[0]?.extensions?.code, "BAD_USER_INPUT", id);
    assert.equal(result.errors?.[0]?.extensions?.argument, "id");
  }
});

test("a filter value that looks like a Mongo operator is just a string", async () => {
  const result = await gateway.query(`query($id: String!) { knowledgeBase(knowledgeBaseId: $id) { name } }`, {
    token: alice,
    variables: { id: '{"$ne": null}' },
  });
  assert.equal(result.errors?.[0]?.extensions?.code, "NOT_FOUND");
});

async function seedKnowledgeBases(username: string, count: number): Promise<void> {
  const { knowledgeBases, files } = mongoCollections(gateway.app.stores.mongo.db);
  const now = new Date();
  const kbs: KnowledgeBaseDoc[] = [];
  const fileDocs: FileDoc[] = [];
  for (let k = 0; k < count; k++) {
    const kb: KnowledgeBaseDoc = {
      knowledge_base_id: layraId(username),
      knowledge_base_name: `kb ${k}`,
      username,
      files: [],
      used_chat: [],
      created_at: now,
      last_modify_at: now,
      is_delete: false,
    };
    for (let f = 0; f < 3; f++) {
      const file: FileDoc = {
        file_id: layraId(username),
        filename: `f${f}.pdf`,
        username,
        minio_filename: `${username}_f${f}.pdf`,
        minio_url: storedUrl("x"),
        knowledge_db_id: kb.knowledge_base_id,
        images: [1, 2].map((n) => ({
          images_id: layraId(username),
          minio_filename: `${username}_p${n}.png`,
          minio_url: storedUrl("x"),
          page_number: n,
        })),
        created_at: now,
        last_modify_at: now,
        is_delete: false,
      };
      kb.files.push({
        file_id: file.file_id,
        filename: file.filename,
        minio_filename: file.minio_filename,
        minio_url: file.minio_url,
        created_at: now,
      });
      fileDocs.push(file);
    }
    kbs.push(kb);
  }
  await knowledgeBases.insertMany(kbs);
  await files.insertMany(fileDocs);
  for (let c = 0; c < Math.min(count, 20); c++) await writer.createConversation(username, `c${c}`, [layraTurn("q")]);
}

test("the list's first page and by-id loads read together answer as apart: an old base past the shared read, a temp base, another user's base", async () => {
  await seedKnowledgeBases("paging", 5);
  const listed = await mongoCollections(gateway.app.stores.mongo.db)
    .knowledgeBases.find({ username: "paging", is_delete: false }, { sort: { created_at: -1, knowledge_base_id: 1 } })
    .toArray();
  const oldest = listed.at(-1)!;
  const temp = await writer.createKnowledgeBase("paging", "temp_base_paging", {
    id: `temp_${layraId("paging")}_${randomUUID()}`,
    temp: true,
  });
  // The page (2 read for 1) and three ids share one read of 5 documents: the oldest base is
  // past it, so it is read by id after; the temp base is found but stays out of the page.
  const finds: string[] = [];
  const listener = (event: CommandStartedEvent) => {
    if (event.commandName === "find" && event.command.find === "knowledge_bases") finds.push(event.commandName);
  };
  gateway.app.stores.mongo.client.on("commandStarted", listener);
  const result = await gateway.query<Json>(
    `query($oldest: String!, $temp: String!, $foreign: String!) {
      me { knowledgeBases(first: 1) { totalCount pageInfo { hasNextPage } edges { node { knowledgeBaseId } } } }
      oldest: knowledgeBase(knowledgeBaseId: $oldest) { name }
      temp: knowledgeBase(knowledgeBaseId: $temp) { isTemporary }
      foreign: knowledgeBase(knowledgeBaseId: $foreign) { name } }`,
    {
      token: await gateway.token("paging"),
      variables: { oldest: oldest.knowledge_base_id, temp: temp.knowledge_base_id, foreign: ids["bob.kb"] },
    },
  );
  gateway.app.stores.mongo.client.off("commandStarted", listener);
  assert.deepEqual(
    result.errors?.map((error) => [error.path?.join("."), error.extensions?.code]),
    [["foreign", "NOT_FOUND"]],
  );
  assert.equal(finds.length, 2, "the shared read, then the ids it did not reach");
  const page = result.data!.me.knowledgeBases;
  assert.deepEqual(
    page.edges.map((edge: Json) => edge.node.knowledgeBaseId),
    [listed[0]!.knowledge_base_id],
  );
  assert.equal(page.totalCount, 5, "a full page counts its total");
  assert.equal(page.pageInfo.hasNextPage, true);
  assert.equal(result.data!.oldest.name, oldest.knowledge_base_name);
  assert.equal(result.data!.temp.isTemporary, true);
  assert.equal(result.data!.foreign, null);
});

/** The chatflows documents each Mongo reply of `run` carried, by command (from the driver's command monitoring). */
async function chatflowsReplies<T>(run: () => Promise<T>): Promise<{ result: T; replies: [string, number][] }> {
  const replies: [string, number][] = [];
  const names = new Map<number, string>();
  const started = (event: CommandStartedEvent) => {
    if (event.command[event.commandName] === "chatflows") names.set(event.requestId, event.commandName);
  };
  const succeeded = (event: CommandSucceededEvent) => {
    const name = names.get(event.requestId);
    const cursor = (event.reply as { cursor?: { firstBatch?: unknown[] } }).cursor;
    if (name) replies.push([name, cursor?.firstBatch?.length ?? 0]);
  };
  const { client } = gateway.app.stores.mongo;
  client.on("commandStarted", started).on("commandSucceeded", succeeded);
  try {
    return { result: await run(), replies };
  } finally {
    client.off("commandStarted", started).off("commandSucceeded", succeeded);
  }
}

test("a workflow with more chatflows than a page reads only the windows asked for, and pages, counts and ends right", async () => {
  const user = "crowded";
  const token = await gateway.token(user);
  const big = await writer.createWorkflow(user, "big");
  const small = await writer.createWorkflow(user, "small");
  const at = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000);
  const chatflow = (workflowId: string, name: string, changed: Date, deleted = false): ChatflowDoc => ({
    chatflow_id: layraId(user),
    workflow_id: workflowId,
    chatflow_name: name,
    username: user,
    turns: [],
    created_at: changed,
    last_modify_at: changed,
    is_read: false,
    is_delete: deleted,
  });
  // 300 chatflows in the big workflow (three times the largest page), all newer than the small
  // workflow's two, so a shared read of the newest ones is crowded out by the big workflow.
  const bigOnes = Array.from({ length: 300 }, (_, i) => chatflow(big.workflow_id, `big ${i}`, at(i)));
  const smallOnes = [
    chatflow(small.workflow_id, "small 0", at(1000)),
    chatflow(small.workflow_id, "small 1", at(1001)),
  ];
  await mongoCollections(gateway.app.stores.mongo.db).chatflows.insertMany([
    ...bigOnes,
    ...smallOnes,
    chatflow(small.workflow_id, "deleted", at(999), true),
  ]);
  const newest = (docs: ChatflowDoc[], from: number, to: number) => docs.slice(from, to).map((doc) => doc.chatflow_id);

  const page = `{ totalCount pageInfo { hasNextPage hasPreviousPage endCursor } edges { node { chatflowId } } }`;
  const byWorkflow = (me: Json) =>
    new Map<string, Json>(me.workflows.edges.map((edge: Json) => [edge.node.workflowId, edge.node.chatflows]));
  // With and without the caller's chatflows list (whose first page, not the whole list here, holds
  // the big workflow's first window).
  for (const withList of [true, false]) {
    const { result, replies } = await chatflowsReplies(() =>
      gateway.query<{ me: Json }>(
        `{ me { ${withList ? "chatflows(first: 5) { totalCount }" : ""}
          workflows { edges { node { workflowId chatflows(first: 3) ${page} } } } } }`,
        { token },
      ),
    );
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    if (withList) assert.equal(result.data!.me.chatflows.totalCount, 302);
    const flows = byWorkflow(result.data!.me);
    assert.deepEqual(
      flows.get(big.workflow_id).edges.map((edge: Json) => edge.node.chatflowId),
      newest(bigOnes, 0, 3),
    );
    assert.equal(flows.get(big.workflow_id).pageInfo.hasNextPage, true);
    assert.equal(flows.get(big.workflow_id).totalCount, 300);
    assert.deepEqual(
      flows.get(small.workflow_id).edges.map((edge: Json) => edge.node.chatflowId),
      newest(smallOnes, 0, 2),
      "the deleted chatflow stays out",
    );
    assert.equal(flows.get(small.workflow_id).pageInfo.hasNextPage, false);
    assert.equal(flows.get(small.workflow_id).totalCount, 2);
    // Each reply holds at most a window and one more (a page of 5 reads 6, of 3 reads 4; the shared
    // first windows of two workflows 8); nothing reads the big workflow whole.
    const documents = replies.reduce((sum, [, n]) => sum + n, 0);
    console.log(`workflows' chatflows ${withList ? "with" : "without"} the list: ${JSON.stringify(replies)}`);
    assert.ok(
      replies.every(([, n]) => n <= 8) && documents <= 6 + 8 + 4 + 2,
      `bounded reads: ${JSON.stringify(replies)}`,
    );
  }

  // One workflow paged from a cursor and from the end: each read is the window alone.
  const workflowPage = async (args: string) => {
    const { result, replies } = await chatflowsReplies(() =>
      gateway.query<{ workflow: Json }>(
        `query($id: String!) { workflow(workflowId: $id) { chatflows(${args}) ${page} } }`,
        { token, variables: { id: big.workflow_id } },
      ),
    );
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    assert.ok(
      replies.every(([, n]) => n <= 101),
      `at most the largest window and one more per reply: ${JSON.stringify(replies)}`,
    );
    return result.data!.workflow.chatflows;
  };
  const first = await workflowPage("first: 100");
  assert.equal(first.edges.length, 100);
  const second = await workflowPage(`first: 100, after: "${first.pageInfo.endCursor}"`);
  assert.deepEqual(
    second.edges.map((edge: Json) => edge.node.chatflowId),
    newest(bigOnes, 100, 200),
  );
  assert.deepEqual([second.pageInfo.hasNextPage, second.pageInfo.hasPreviousPage], [true, true]);
  const third = await workflowPage(`first: 100, after: "${second.pageInfo.endCursor}"`);
  assert.deepEqual(
    third.edges.map((edge: Json) => edge.node.chatflowId),
    newest(bigOnes, 200, 300),
  );
  assert.equal(third.pageInfo.hasNextPage, false);
  assert.equal(third.totalCount, 300, "a short last page is its own total");
  const last = await workflowPage("last: 2");
  assert.deepEqual(
    last.edges.map((edge: Json) => edge.node.chatflowId),
    newest(bigOnes, 298, 300),
  );
  assert.deepEqual([last.totalCount, last.pageInfo.hasNextPage], [300, false]);
});

test("the profile query issues the same number of Mongo commands for 1 and for 50 knowledge bases", async () => {
  await seedKnowledgeBases("one", 1);
  await seedKnowledgeBases("fifty", 50);
  const commands: string[] = [];
  const listener = (event: CommandStartedEvent) => commands.push(event.commandName);
  gateway.app.stores.mongo.client.on("commandStarted", listener);
  const count = async (username: string) => {
    commands.length = 0;
    const result = await gateway.query<{ me: Json }>(PROFILE, {
      token: await gateway.token(username),
      variables: { first: 100 },
    });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    return {
      commands: [...commands].sort(),
      kbs: result.data!.me.knowledgeBases.edges.length,
      files: result.data!.me.knowledgeBases.edges.reduce((n: number, e: Json) => n + e.node.files.edges.length, 0),
    };
  };
  const small = await count("one");
  const large = await count("fifty");
  gateway.app.stores.mongo.client.off("commandStarted", listener);
  assert.deepEqual([small.kbs, small.files, large.kbs, large.files], [1, 3, 50, 150]);
  assert.deepEqual(large.commands, small.commands, "the command count does not grow with the data");
  assert.ok(small.commands.length <= 7, `a fixed, small number of commands: ${small.commands.join(", ")}`);
});

test("the whole profile's Mongo commands, counted on the wire, are what the driver reports: docs/api.md's 7, at most one per collection", async () => {
  const counter = await MongoWireCounter.start(shared.env.MONGODB_URL!);
  // A second gateway on the same database, whose Mongo traffic goes through the counting proxy.
  const counted = await startGateway(
    { ...shared.env, MONGODB_URL: counter.url },
    { GRAPHQL_MAX_COST: "10000000", MONGODB_DB: gateway.config.mongo.database, MONGODB_MIN_POOL_SIZE: "0" },
  );
  const driver = new Map<string, number>();
  const listener = (event: CommandStartedEvent) => {
    const collection = (event.command as Record<string, unknown>)[event.commandName];
    const key = `${event.commandName} ${String(collection)}`;
    driver.set(key, (driver.get(key) ?? 0) + 1);
  };
  try {
    const token = await counted.token("alice");
    // Once untimed: connection handshakes and the background index build stay out of the count.
    assert.equal((await counted.query(PROFILE, { token, variables: { first: 100 } })).errors, undefined);
    counter.reset();
    counted.app.stores.mongo.client.on("commandStarted", listener);
    const result = await counted.query(PROFILE, { token, variables: { first: 100 } });
    counted.app.stores.mongo.client.off("commandStarted", listener);
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    const wire = counter.total();
    const byDriver = [...driver.values()].reduce((sum, n) => sum + n, 0);
    const perCollection = [...counter.byCollection()].map(([name, n]) => `${name} ${n}`).join(", ");
    console.log(
      `profile: ${wire} Mongo commands on the wire (${perCollection}); driver: ${[...driver].map(([name, n]) => `${name} ${n}`).join(", ")}`,
    );
    assert.equal(wire, byDriver, "the driver reports what the wire carries");
    assert.ok(wire <= 7, `${wire} commands: ${perCollection}`);
    const profileCollections = [
      "model_config",
      "nodes",
      "knowledge_bases",
      "files",
      "conversations",
      "chatflows",
      "workflows",
    ];
    for (const [collection, n] of counter.byCollection())
      assert.ok(n <= 1 && profileCollections.includes(collection), `${collection}: ${n} commands (${perCollection})`);
    const profileByCollection = new Map(counter.byCollection());

    // me.files beside the profile takes the ids of the knowledge bases listed whole, and its first
    // page is read with the profile's files: no command of its own.
    counter.reset();
    const withFiles = await counted.query<{ me: Json }>(
      PROFILE.replace(
        "customNodes {",
        "files(first: $first) { totalCount edges { node { fileId pageCount } } }\n    customNodes {",
      ),
      { token, variables: { first: 100 } },
    );
    assert.equal(withFiles.errors, undefined, JSON.stringify(withFiles.errors));
    // The shared read also finds the turn's upload by id; it stays out of the page.
    const listedFiles = withFiles.data!.me.files.edges.map((edge: Json) => edge.node.fileId);
    assert.equal(withFiles.data!.me.files.totalCount, 2);
    assert.ok(listedFiles.length === 2 && listedFiles.includes(ids["alice.file"]), listedFiles.join(", "));
    assert.ok(!listedFiles.includes(ids["alice.upload"]), "the temp upload is not listed");
    const turns = withFiles.data!.me.conversations.edges[0].node.turns.edges.map((edge: Json) => edge.node);
    assert.deepEqual(
      turns.flatMap((turn: Json) => turn.uploadedFiles.map((file: Json) => file.filename)),
      ["upload.png"],
      "while its turn still shows it",
    );
    const withFilesPerCollection = [...counter.byCollection()].map(([name, n]) => `${name} ${n}`).join(", ");
    console.log(`profile with me.files: ${counter.total()} Mongo commands on the wire (${withFilesPerCollection})`);
    assert.deepEqual(
      new Map(counter.byCollection()),
      profileByCollection,
      `the profile's commands and no more: ${withFilesPerCollection}`,
    );
    // Alone, me.files reads the listed ids and then the files.
    counter.reset();
    const alone = await counted.query<{ me: Json }>(`{ me { files { edges { node { fileId pageCount } } } } }`, {
      token,
    });
    assert.equal(alone.errors, undefined, JSON.stringify(alone.errors));
    assert.deepEqual([...counter.byCollection()].sort(), [
      ["files", 1],
      ["knowledge_bases", 1],
    ]);
  } finally {
    await counted.app.stop();
    await counter.close();
  }
});

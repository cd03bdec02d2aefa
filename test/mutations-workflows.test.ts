// Workflow, chatflow and custom-node mutations: LAYRA's upsert, idempotent create, and deletes
// that cascade workflow -> chatflows -> temp knowledge bases.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { before, test } from "node:test";
import { LayraWriter, layraTurn } from "../dev/layra-writer.js";
import { knowledgeBaseTraces, NOTHING_LEFT } from "./fixtures/traces.js";
import { gatewayForFile, type TestGateway } from "./helpers.js";
import { mongoCollections } from "../src/stores/mongo.js";

const file = gatewayForFile();
let gw: TestGateway;
let writer: LayraWriter;
let alice: string;
let bob: string;

before(async () => {
  gw = await file.ready;
  writer = new LayraWriter(gw.app.stores, gw.config.model.url);
  [alice, bob] = await Promise.all([gw.token("alice"), gw.token("bob")]);
});

const codeOf = (response: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  response.errors?.[0]?.extensions?.code;
const SAVE = `mutation($input: SaveWorkflowInput!) { saveWorkflow(input: $input) { workflowId name startNode } }`;
const CREATE_CHATFLOW = `mutation($id: String, $workflowId: String!, $name: String!) { createChatflow(chatflowId: $id, workflowId: $workflowId, name: $name) { chatflowId name workflowId } }`;
const editorState = {
  config: { docker_image_use: "python-sandbox:latest" },
  nodes: [
    {
      id: "node_start",
      type: "default",
      position: { x: 0, y: 0 },
      data: { label: "Start", nodeType: "start", pip: { numpy: "2.1" } },
    },
  ],
  edges: [],
  globalVariables: { answer: "'42'" },
};

test("saveWorkflow upserts as LAYRA: $set of the editor state, created_at only on insert", async () => {
  const created = await gw.query<{ saveWorkflow: { workflowId: string; name: string; startNode: string } }>(SAVE, {
    token: alice,
    variables: { input: { ...editorState, name: " Flow " } },
  });
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  const { workflowId } = created.data!.saveWorkflow;
  assert.match(workflowId, /^alice_[0-9a-f-]{36}$/);
  const first = await mongoCollections(gw.app.stores.mongo.db).workflows.findOne(
    { workflow_id: workflowId },
    { projection: { _id: 0 } },
  );
  assert.deepEqual(
    { ...first!, created_at: undefined, last_modify_at: undefined },
    {
      workflow_id: workflowId,
      username: "alice",
      workflow_name: "Flow",
      workflow_config: editorState.config,
      nodes: editorState.nodes,
      edges: [],
      start_node: "node_start",
      global_variables: { answer: "'42'" },
      last_modify_at: undefined,
      is_delete: false,
      created_at: undefined,
    },
  );

  const saved = await gw.query(SAVE, {
    token: alice,
    variables: { input: { ...editorState, workflowId, name: "Flow v2", globalVariables: { answer: "'43'" } } },
  });
  assert.equal(saved.errors, undefined);
  const second = await mongoCollections(gw.app.stores.mongo.db).workflows.findOne({ workflow_id: workflowId });
  assert.equal(second!.workflow_name, "Flow v2");
  assert.deepEqual(second!.global_variables, { answer: "'43'" });
  assert.equal(second!.created_at.getTime(), first!.created_at.getTime(), "created_at is only set on insert");
  assert.equal(await mongoCollections(gw.app.stores.mongo.db).workflows.countDocuments({ workflow_id: workflowId }), 1);

  const refused = [
    { ...editorState, name: "x", workflowId: `bob_${randomUUID()}` },
    { ...editorState, name: "x", nodes: { not: "a list" } },
    { ...editorState, name: "x", globalVariables: { n: 3 } },
    { ...editorState, name: "x", config: { $where: "1" } },
    // MongoDB 7 would store a dotted key, FerretDB refuses it: the gateway writes the portable subset.
    { ...editorState, name: "x", nodes: [{ id: "n", data: { pip: { "ruamel.yaml": "0.18" } } }] },
    { ...editorState, name: "" },
  ];
  for (const input of refused)
    assert.equal(
      codeOf(await gw.query(SAVE, { token: alice, variables: { input } })),
      "BAD_USER_INPUT",
      JSON.stringify(input),
    );
  assert.equal(await mongoCollections(gw.app.stores.mongo.db).workflows.countDocuments({ username: "alice" }), 1);
});

test("renameWorkflow renames the caller's workflow only", async () => {
  const workflow = await writer.createWorkflow("alice", "old");
  const rename = `mutation($id: String!, $name: String!) { renameWorkflow(workflowId: $id, name: $name) { name } }`;
  assert.equal(
    codeOf(await gw.query(rename, { token: bob, variables: { id: workflow.workflow_id, name: "bob's" } })),
    "NOT_FOUND",
  );
  assert.equal(
    (await mongoCollections(gw.app.stores.mongo.db).workflows.findOne({ workflow_id: workflow.workflow_id }))!
      .workflow_name,
    "old",
  );
  const renamed = await gw.query<{ renameWorkflow: { name: string } }>(rename, {
    token: alice,
    variables: { id: workflow.workflow_id, name: " new " },
  });
  assert.equal(renamed.data?.renameWorkflow.name, "new");
  assert.equal(
    (await mongoCollections(gw.app.stores.mongo.db).workflows.findOne({ workflow_id: workflow.workflow_id }))!
      .workflow_name,
    "new",
  );
});

test("createChatflow is idempotent as LAYRA's, needs the caller's workflow, and renameChatflow renames", async () => {
  const workflow = await writer.createWorkflow("alice", "wf");
  const chatflowId = `alice_${randomUUID()}`;
  const first = await gw.query<{ createChatflow: { chatflowId: string; name: string; workflowId: string } }>(
    CREATE_CHATFLOW,
    { token: alice, variables: { id: chatflowId, workflowId: workflow.workflow_id, name: "run 1" } },
  );
  assert.deepEqual(first.data?.createChatflow, { chatflowId, name: "run 1", workflowId: workflow.workflow_id });
  const again = await gw.query<{ createChatflow: { name: string } }>(CREATE_CHATFLOW, {
    token: alice,
    variables: { id: chatflowId, workflowId: workflow.workflow_id, name: "other name" },
  });
  assert.equal(again.data?.createChatflow.name, "run 1", "an existing chatflow is answered unchanged");
  assert.equal(await mongoCollections(gw.app.stores.mongo.db).chatflows.countDocuments({ chatflow_id: chatflowId }), 1);
  const doc = await mongoCollections(gw.app.stores.mongo.db).chatflows.findOne(
    { chatflow_id: chatflowId },
    { projection: { _id: 0 } },
  );
  assert.deepEqual(Object.keys(doc!).sort(), [
    "chatflow_id",
    "chatflow_name",
    "created_at",
    "is_delete",
    "is_read",
    "last_modify_at",
    "turns",
    "username",
    "workflow_id",
  ]);

  const bobsWorkflow = await writer.createWorkflow("bob", "bob's");
  assert.equal(
    codeOf(
      await gw.query(CREATE_CHATFLOW, { token: alice, variables: { workflowId: bobsWorkflow.workflow_id, name: "x" } }),
    ),
    "NOT_FOUND",
  );
  assert.equal(
    await mongoCollections(gw.app.stores.mongo.db).chatflows.countDocuments({ workflow_id: bobsWorkflow.workflow_id }),
    0,
  );

  const rename = `mutation($id: String!, $name: String!) { renameChatflow(chatflowId: $id, name: $name) { name } }`;
  assert.equal(
    codeOf(await gw.query(rename, { token: bob, variables: { id: chatflowId, name: "bob's" } })),
    "NOT_FOUND",
  );
  assert.equal(
    (
      await gw.query<{ renameChatflow: { name: string } }>(rename, {
        token: alice,
        variables: { id: chatflowId, name: "renamed" },
      })
    ).data?.renameChatflow.name,
    "renamed",
  );
  assert.equal(
    (await mongoCollections(gw.app.stores.mongo.db).chatflows.findOne({ chatflow_id: chatflowId }))!.chatflow_name,
    "renamed",
  );
});

/** A chatflow of `workflowId` with one turn that uploaded a file into a temp knowledge base. */
async function chatflowWithUpload(workflowId: string) {
  const chatflow = await writer.createChatflow("alice", workflowId, "with upload");
  const suffix = randomUUID();
  const kb = await writer.createKnowledgeBase("alice", `temp_base_alice_${suffix}`, {
    id: `temp_${chatflow.chatflow_id}_${suffix}`,
    temp: true,
  });
  const file = await writer.ingestFile("alice", kb.knowledge_base_id, {
    filename: "upload.pdf",
    pages: [{ text: "page" }],
  });
  await mongoCollections(gw.app.stores.mongo.db).chatflows.updateOne(
    { chatflow_id: chatflow.chatflow_id },
    { $push: { turns: { ...layraTurn("q", { tempDb: kb.knowledge_base_id }), status: "" } } },
  );
  return { chatflow, temp: { id: kb.knowledge_base_id, files: [file] } };
}

test("deleteChatflow deletes its temp knowledge bases in every store, then the chatflow", async () => {
  const workflow = await writer.createWorkflow("alice", "wf");
  const { chatflow, temp } = await chatflowWithUpload(workflow.workflow_id);
  const remove = `mutation($id: String!) { deleteChatflow(chatflowId: $id) }`;
  assert.equal(codeOf(await gw.query(remove, { token: bob, variables: { id: chatflow.chatflow_id } })), "NOT_FOUND");
  assert.equal((await knowledgeBaseTraces(gw.app.stores, temp.id, temp.files)).milvusCollection, true);
  const deleted = await gw.query(remove, { token: alice, variables: { id: chatflow.chatflow_id } });
  assert.equal(deleted.errors, undefined);
  assert.deepEqual(await knowledgeBaseTraces(gw.app.stores, temp.id, temp.files), NOTHING_LEFT);
  assert.equal(
    await mongoCollections(gw.app.stores.mongo.db).chatflows.countDocuments({ chatflow_id: chatflow.chatflow_id }),
    0,
  );
  assert.equal(
    await mongoCollections(gw.app.stores.mongo.db).workflows.countDocuments({ workflow_id: workflow.workflow_id }),
    1,
  );
});

test("deleteWorkflow deletes its chatflows and their temp knowledge bases, then the workflow; other workflows keep theirs", async () => {
  const workflow = await writer.createWorkflow("alice", "doomed");
  const kept = await writer.createWorkflow("alice", "kept");
  const a = await chatflowWithUpload(workflow.workflow_id);
  const b = await chatflowWithUpload(workflow.workflow_id);
  const other = await writer.createChatflow("alice", kept.workflow_id, "other");
  const remove = `mutation($id: String!) { deleteWorkflow(workflowId: $id) }`;
  assert.equal(codeOf(await gw.query(remove, { token: bob, variables: { id: workflow.workflow_id } })), "NOT_FOUND");
  assert.equal(
    await mongoCollections(gw.app.stores.mongo.db).chatflows.countDocuments({ workflow_id: workflow.workflow_id }),
    2,
  );

  const deleted = await gw.query<{ deleteWorkflow: string }>(remove, {
    token: alice,
    variables: { id: workflow.workflow_id },
  });
  assert.equal(deleted.errors, undefined, JSON.stringify(deleted.errors));
  assert.equal(
    await mongoCollections(gw.app.stores.mongo.db).workflows.countDocuments({ workflow_id: workflow.workflow_id }),
    0,
  );
  assert.equal(
    await mongoCollections(gw.app.stores.mongo.db).chatflows.countDocuments({ workflow_id: workflow.workflow_id }),
    0,
  );
  for (const { temp } of [a, b])
    assert.deepEqual(await knowledgeBaseTraces(gw.app.stores, temp.id, temp.files), NOTHING_LEFT);
  assert.equal(
    await mongoCollections(gw.app.stores.mongo.db).chatflows.countDocuments({ chatflow_id: other.chatflow_id }),
    1,
  );
});

test("deleteChatflowsOfWorkflow deletes every chatflow of the workflow with their temp knowledge bases; the workflow and other workflows' chatflows stay", async () => {
  const workflow = await writer.createWorkflow("alice", "cleared");
  const kept = await writer.createWorkflow("alice", "untouched");
  const a = await chatflowWithUpload(workflow.workflow_id);
  const b = await chatflowWithUpload(workflow.workflow_id);
  const other = await writer.createChatflow("alice", kept.workflow_id, "other");
  const clear = `mutation($id: String!) { deleteChatflowsOfWorkflow(workflowId: $id) }`;
  const chatflows = mongoCollections(gw.app.stores.mongo.db).chatflows;
  assert.equal(codeOf(await gw.query(clear, { token: bob, variables: { id: workflow.workflow_id } })), "NOT_FOUND");
  assert.equal(await chatflows.countDocuments({ workflow_id: workflow.workflow_id }), 2, "bob deleted nothing");

  const cleared = await gw.query<{ deleteChatflowsOfWorkflow: number }>(clear, {
    token: alice,
    variables: { id: workflow.workflow_id },
  });
  assert.equal(cleared.errors, undefined, JSON.stringify(cleared.errors));
  assert.equal(cleared.data!.deleteChatflowsOfWorkflow, 2);
  assert.equal(await chatflows.countDocuments({ workflow_id: workflow.workflow_id }), 0);
  for (const { temp } of [a, b])
    assert.deepEqual(await knowledgeBaseTraces(gw.app.stores, temp.id, temp.files), NOTHING_LEFT);
  assert.equal(await chatflows.countDocuments({ chatflow_id: other.chatflow_id }), 1);
  assert.equal(
    await mongoCollections(gw.app.stores.mongo.db).workflows.countDocuments({ workflow_id: workflow.workflow_id }),
    1,
    "the workflow itself stays",
  );
  const again = await gw.query<{ deleteChatflowsOfWorkflow: number }>(clear, {
    token: alice,
    variables: { id: workflow.workflow_id },
  });
  assert.equal(again.errors, undefined);
  assert.equal(again.data!.deleteChatflowsOfWorkflow, 0, "a workflow without chatflows clears nothing");
});

test("saveCustomNode and deleteCustomNode write custom_nodes.<name>; a name with '.' or a leading '$' is refused", async () => {
  const save = `mutation($name: String!, $definition: JSON!) { saveCustomNode(name: $name, definition: $definition) { name definition } }`;
  const remove = `mutation($name: String!) { deleteCustomNode(name: $name) }`;
  const definition = { data: { nodeType: "code", code: "print(1)" } };
  const saved = await gw.query<{ saveCustomNode: { name: string } }>(save, {
    token: alice,
    variables: { name: " My node ", definition },
  });
  assert.equal(saved.data?.saveCustomNode.name, "My node");
  assert.deepEqual(
    (await mongoCollections(gw.app.stores.mongo.db).nodes.findOne({ username: "alice" }))!.custom_nodes,
    {
      "My node": definition,
    },
  );

  for (const name of ["a.b", "$set", "", "x".repeat(101)]) {
    assert.equal(
      codeOf(await gw.query(save, { token: alice, variables: { name, definition } })),
      "BAD_USER_INPUT",
      name,
    );
  }
  assert.equal(
    codeOf(await gw.query(save, { token: alice, variables: { name: "ok", definition: [1] } })),
    "BAD_USER_INPUT",
  );
  assert.deepEqual(
    Object.keys((await mongoCollections(gw.app.stores.mongo.db).nodes.findOne({ username: "alice" }))!.custom_nodes),
    ["My node"],
  );

  assert.equal(codeOf(await gw.query(remove, { token: bob, variables: { name: "My node" } })), "NOT_FOUND");
  assert.equal(
    (await gw.query<{ deleteCustomNode: string }>(remove, { token: alice, variables: { name: "My node" } })).data
      ?.deleteCustomNode,
    "My node",
  );
  assert.deepEqual(
    (await mongoCollections(gw.app.stores.mongo.db).nodes.findOne({ username: "alice" }))!.custom_nodes,
    {},
  );
  assert.equal(codeOf(await gw.query(remove, { token: alice, variables: { name: "My node" } })), "NOT_FOUND");
});

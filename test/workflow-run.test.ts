// Workflow runs started, resumed and canceled through the gateway, checked against what LAYRA's execute
// and cancel endpoints write (docs/workflows.md): the Redis keys field by field, the Kafka message
// (also through LAYRA's own pydantic `Workflow` model), its engine's graph refusals with its messages,
// ownership, bounds, and a run followed live while a stand-in for LAYRA's consumer runs it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { Consumer } from "@platformatic/kafka";
import type { Redis } from "ioredis";
import { eventually, gatewayForFile, redisClient } from "./helpers.js";
import { createTopic, ingestOverrides, startWorkers } from "./ingest-helpers.js";
import { wsOperation } from "./ws.js";
import { WorkflowShapeError, workflowGraphProblem } from "../src/lib/workflow-graph.js";

const overrides = ingestOverrides();
const state = gatewayForFile(overrides);
let ann: string;
let bob: string;
let taskDb: Redis;
let workflowId: string;
/** Every message on the task topic, read by a group of the test's own from the start. */
const queued: { value: Record<string, unknown>; headers: Record<string, string> }[] = [];
let inspector: Consumer;

const codeOf = (response: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  response.errors?.[0]?.extensions?.code;
const LAYRA_TIME = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?\+08:00$/;
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const model = {
  modelName: "qwen",
  modelURL: "http://llm.example",
  apiKey: "sk-test",
  baseUsed: [],
  systemPrompt: "be brief",
  temperature: 0.5,
  maxLength: 100,
  topP: 0.9,
  topK: 3,
  scoreThreshold: 10,
  useTemperatureDefault: false,
  useMaxLengthDefault: true,
  useTopPDefault: false,
  useTopKDefault: true,
  useScoreThresholdDefault: false,
};
const editor = {
  name: "runnable",
  config: { docker_image_use: "python-sandbox:latest" },
  startNode: "node_start",
  globalVariables: { answer: "'42'" },
  nodes: [
    { id: "node_start", type: "default", position: { x: 0, y: 0 }, data: { label: "Start", nodeType: "start" } },
    {
      id: "node_code_1",
      type: "default",
      position: { x: 1, y: 0 },
      data: { label: "Add", nodeType: "code", code: "answer = answer + 1", pip: {}, status: "init", debug: true },
    },
    {
      id: "node_vlm_1",
      type: "default",
      position: { x: 2, y: 0 },
      data: {
        label: "Ask",
        nodeType: "vlm",
        prompt: "hi",
        modelConfig: model,
        mcpConfig: { m1: { mcpServerUrl: "http://mcp.example", mcpTools: [{ name: "a" }, { name: "b" }] } },
        mcpUse: { m1: ["b"] },
      },
    },
  ],
  edges: [
    { id: "e1", source: "node_start", target: "node_code_1", sourceHandle: null },
    { id: "e2", source: "node_code_1", target: "node_vlm_1" },
  ],
};
/** What LAYRA's editor posts for `editor` (FlowEditor's sendNodes/sendEdges), worked out by hand. */
const layraNodes = [
  { id: "node_start", type: "start", data: { name: "Start", modelConfig: {}, mcpUse: {} } },
  {
    id: "node_code_1",
    type: "code",
    data: { name: "Add", code: "answer = answer + 1", pip: {}, modelConfig: {}, mcpUse: {} },
  },
  {
    id: "node_vlm_1",
    type: "vlm",
    data: {
      name: "Ask",
      modelConfig: {
        model_name: "qwen",
        model_url: "http://llm.example",
        api_key: "sk-test",
        base_used: [],
        system_prompt: "be brief",
        temperature: 0.5,
        max_length: -1,
        top_P: 0.9,
        top_K: -1,
        score_threshold: 10,
      },
      prompt: "hi",
      mcpUse: { m1: { mcpServerUrl: "http://mcp.example", mcpTools: [{ name: "b" }] } },
    },
  },
];
const layraEdges = [
  { source: "node_start", target: "node_code_1" },
  { source: "node_code_1", target: "node_vlm_1" },
];
/** LAYRA's `Workflow` model: its fields in declared order (what `model_dump()` gives). */
const WORKFLOW_FIELDS = [
  "username",
  "nodes",
  "edges",
  "start_node",
  "global_variables",
  "debug_resume_task_id",
  "breakpoints",
  "input_resume_task_id",
  "user_message",
  "parent_id",
  "temp_db_id",
  "chatflow_id",
  "docker_image_use",
  "need_save_image",
];

const RUN = `mutation($input: RunWorkflowInput!) { runWorkflow(input: $input) }`;
const RESUME = `mutation($taskId: String!, $mode: WorkflowResumeMode!, $input: RunWorkflowInput!) { resumeWorkflowRun(taskId: $taskId, mode: $mode, input: $input) }`;
const CANCEL = `mutation($taskId: String!) { cancelWorkflowRun(taskId: $taskId) }`;

before(async () => {
  const gateway = await state.ready;
  await createTopic(gateway.config, 1);
  taskDb = redisClient(gateway.config, "task");
  [ann, bob] = await Promise.all([gateway.token("ann"), gateway.token("bob")]);
  const saved = await gateway.query<{ saveWorkflow: { workflowId: string } }>(
    `mutation($input: SaveWorkflowInput!) { saveWorkflow(input: $input) { workflowId } }`,
    { token: ann, variables: { input: editor } },
  );
  assert.equal(saved.errors, undefined, JSON.stringify(saved.errors));
  workflowId = saved.data!.saveWorkflow.workflowId;
  inspector = new Consumer({
    groupId: `${gateway.config.kafka.groupId}-inspect`,
    clientId: "inspect",
    bootstrapBrokers: gateway.config.kafka.brokers,
  });
  const stream = await inspector.consume({ topics: [gateway.config.kafka.topic], mode: "earliest", autocommit: false });
  void (async () => {
    for await (const message of stream)
      queued.push({
        value: JSON.parse(message.value.toString()) as Record<string, unknown>,
        headers: Object.fromEntries([...message.headers].map(([k, v]) => [k.toString(), v.toString()])),
      });
  })().catch(() => undefined);
});

after(async () => {
  taskDb.disconnect();
  // close(true) matches a callback overload typed void; without a callback it returns a promise.
  // eslint-disable-next-line @typescript-eslint/await-thenable
  await inspector.close(true);
});

async function messageOf(taskId: string, type = "workflow") {
  let found: (typeof queued)[number] | undefined;
  await eventually(
    () => (found = queued.find((m) => m.value.task_id === taskId && m.value.type === type)) !== undefined,
    `the ${type} message of ${taskId} on the task topic`,
    60_000,
  );
  return found!;
}

async function run(token: string, input: Record<string, unknown>) {
  return state.gateway.query<{ runWorkflow: string }>(RUN, { token, variables: { input: { workflowId, ...input } } });
}

async function runOf(input: Record<string, unknown> = {}): Promise<string> {
  const started = await run(ann, input);
  assert.equal(started.errors, undefined, JSON.stringify(started.errors));
  return started.data!.runWorkflow;
}

const workflowKeys = async () => (await taskDb.keys("workflow:*")).sort();

/** LAYRA's pydantic `Workflow` (its declared fields, types and defaults) validates and dumps `data` unchanged. */
function checkWithLayraModel(data: unknown): string {
  const python = join(
    process.env.LAYRA_STACK_CACHE ?? resolve(import.meta.dirname, "../.stack"),
    "layra-venv/bin/python",
  );
  const script = `
import json, sys
from pydantic import BaseModel
class Workflow(BaseModel):
    username: str
    nodes: list
    edges: list
    start_node: str
    global_variables: dict
    debug_resume_task_id: str = ""
    breakpoints: list = []
    input_resume_task_id: str = ""
    user_message: str = ""
    parent_id: str = ""
    temp_db_id: str = ""
    chatflow_id: str = ""
    docker_image_use: str = ""
    need_save_image: str = ""
data = json.loads(sys.stdin.read())
dumped = Workflow.model_validate(data).model_dump()
assert dumped == data, "model_dump differs"
assert list(dumped) == list(data), "field order differs"
print("ok")
`;
  const result = spawnSync(python, ["-c", script], { input: JSON.stringify(data), encoding: "utf8" });
  return `${result.stdout.trim()}${result.stderr.trim()}`;
}

test("runWorkflow writes LAYRA's run keys and queues LAYRA's message, field for field", async () => {
  const taskId = await runOf({ userMessage: "hello", breakpoints: ["node_code_1"] });
  assert.match(taskId, UUID4, "a bare uuid4, as LAYRA's endpoint makes it");

  const hash = await taskDb.hgetall(`workflow:${taskId}`);
  assert.deepEqual(Object.keys(hash).sort(), ["error", "result", "start_time", "status", "username"]);
  assert.deepEqual(
    { ...hash, start_time: "" },
    { status: "pending", username: "ann", start_time: "", result: "", error: "" },
  );
  assert.match(hash.start_time!, LAYRA_TIME);
  assert.deepEqual(await taskDb.hgetall(`workflow:${taskId}:nodes`), {
    node_start: "0",
    node_code_1: "0",
    node_vlm_1: "0",
  });
  const entries = await taskDb.xrange(`workflow:events:${taskId}`, "-", "+");
  assert.equal(entries.length, 1);
  const [, flat] = entries[0]!;
  assert.deepEqual(flat.slice(0, 8), ["type", "workflow", "status", "initializing", "result", "", "error", ""]);
  assert.equal(flat[8], "create_time");
  assert.match(flat[9]!, LAYRA_TIME);
  for (const key of [`workflow:${taskId}`, `workflow:${taskId}:nodes`, `workflow:events:${taskId}`]) {
    const ttl = await taskDb.ttl(key);
    assert.ok(ttl > 0 && ttl <= 3600, `${key} expires within LAYRA's hour (ttl ${ttl})`);
  }
  assert.equal(await taskDb.exists(`workflow:${taskId}:state`, `workflow:${taskId}:operator`), 0);

  const message = await messageOf(taskId);
  assert.deepEqual(message.headers, { priority: "normal" });
  const expected = {
    username: "ann",
    nodes: layraNodes,
    edges: layraEdges,
    start_node: "node_start",
    global_variables: { answer: "'42'" },
    debug_resume_task_id: "",
    breakpoints: ["node_code_1"],
    input_resume_task_id: "",
    user_message: "hello",
    parent_id: "",
    temp_db_id: "",
    chatflow_id: "",
    docker_image_use: "python-sandbox:latest",
    need_save_image: "",
  };
  assert.deepEqual(message.value, { type: "workflow", task_id: taskId, username: "ann", workflow_data: expected });
  assert.deepEqual(Object.keys(message.value), ["type", "task_id", "username", "workflow_data"]);
  assert.deepEqual(Object.keys(message.value.workflow_data as object), WORKFLOW_FIELDS);
  assert.equal(checkWithLayraModel(message.value.workflow_data), "ok");
});

test("LAYRA's engine refusals, with its messages, step for step", () => {
  const node = (id: string, type: string, name: string) => ({ id, type, data: { name } });
  const start = node("node_start", "start", "Start");
  const a = node("a", "code", "A");
  const b = node("b", "code", "B");
  const cond = node("c", "condition", "C");
  const loop = node("l", "loop", "L");
  const problem = (nodes: object[], edges: object[]) =>
    workflowGraphProblem(nodes as never, edges as never, "node_start");
  assert.equal(
    problem(
      [start, a, b],
      [
        { source: "node_start", target: "a" },
        { source: "a", target: "b" },
        { source: "b", target: "a" },
      ],
    ),
    "工作流验证失败: 检测到有向环: Start -> A -> B -> A\n循环请使用loop节点包裹！",
  );
  assert.equal(
    problem([start, a], [{ source: "node_start", target: "a", sourceHandle: "weird" }]),
    "工作流验证失败: 节点 Start -> A: 非法边类型: weird",
  );
  assert.equal(
    problem(
      [start, a, b],
      [
        { source: "node_start", target: "a" },
        { source: "a", target: "b", sourceHandle: "condition-1" },
      ],
    ),
    "工作流验证失败: 节点 Start -> A: 节点 A -> B: 非条件节点使用condition边",
    "an error deep in the graph is prefixed by every edge above it, as LAYRA's recursion does",
  );
  assert.equal(
    problem(
      [start, cond, a],
      [
        { source: "node_start", target: "c" },
        { source: "c", target: "a", sourceHandle: "condition-x" },
      ],
    ),
    "工作流验证失败: 节点 Start -> C: 节点 C -> A: 非法condition类型: condition-x",
  );
  assert.equal(
    problem(
      [start, loop, a, b],
      [
        { source: "node_start", target: "l" },
        { source: "l", target: "a", sourceHandle: "loop_body" },
        { source: "l", target: "b", sourceHandle: "loop_body" },
      ],
    ),
    "工作流验证失败: 节点 Start -> L: 节点 L -> B: 循环节点只能有一个loop_body入口",
  );
  assert.equal(
    problem(
      [start, loop, a],
      [
        { source: "node_start", target: "l" },
        { source: "l", target: "a", sourceHandle: "loop_body" },
        { source: "node_start", target: "a" },
      ],
    ),
    "工作流验证失败: 节点 Start -> A: 跨层级连接: Start(层级:root) -> A(层级:L)",
  );
  assert.equal(
    problem(
      [start, loop, a],
      [
        { source: "node_start", target: "a" },
        { source: "a", target: "l", sourceHandle: "loop_next" },
      ],
    ),
    "工作流验证失败: 节点 Start -> A: 节点 A -> L: 循环节点的loop_next边出口不是原loop节点",
  );
  assert.equal(
    problem(
      [start, loop, a, b],
      [
        { source: "node_start", target: "l" },
        { source: "l", target: "a", sourceHandle: "loop_body" },
        { source: "a", target: "l", sourceHandle: "loop_next" },
        { source: "l", target: "b" },
      ],
    ),
    null,
    "a loop with its body and exit is valid",
  );
  assert.throws(() => problem([start], [{ source: "node_start", target: "ghost" }]), WorkflowShapeError);
});

test("a refused run writes nothing and queues nothing: graph errors, bounds, another user's workflow", async () => {
  const before = await workflowKeys();
  const queuedBefore = queued.length;
  const cyclic = await run(ann, {
    nodes: [
      { id: "node_start", type: "start", data: { name: "Start" } },
      { id: "a", type: "code", data: { name: "A" } },
    ],
    edges: [
      { source: "node_start", target: "a" },
      { source: "a", target: "node_start" },
    ],
  });
  assert.equal(codeOf(cyclic), "WORKFLOW_INVALID");
  assert.equal(cyclic.errors![0]!.extensions!.layraCode, -1);
  assert.equal(
    cyclic.errors![0]!.message,
    "工作流验证失败: 检测到有向环: Start -> A -> Start\n循环请使用loop节点包裹！",
  );
  const dangling = await run(ann, { edges: [{ source: "node_start", target: "ghost" }] });
  assert.equal(codeOf(dangling), "WORKFLOW_INVALID");
  assert.equal(dangling.errors![0]!.extensions!.layraCode, -3);

  const tooMany = await run(ann, {
    nodes: Array.from({ length: 501 }, (_, i) => ({ id: `n${i}`, type: "code", data: { name: `N${i}` } })),
  });
  assert.equal(codeOf(tooMany), "BAD_USER_INPUT");
  assert.equal(tooMany.errors![0]!.extensions!.argument, "nodes");
  assert.equal(codeOf(await run(ann, { nodes: [] })), "BAD_USER_INPUT");
  const longCode = await run(ann, {
    nodes: [{ id: "node_start", type: "start", data: { name: "Start", code: "x".repeat(100_001) } }],
  });
  assert.equal(codeOf(longCode), "BAD_USER_INPUT");
  assert.equal(codeOf(await run(ann, { chatflowId: "bob_9b2f3c4d-1e2f-4a3b-8c4d-5e6f7a8b9c0d" })), "BAD_USER_INPUT");
  assert.equal(codeOf(await run(ann, { needSaveImage: "no-tag" })), "BAD_USER_INPUT");
  assert.equal(codeOf(await run(bob, {})), "NOT_FOUND", "bob cannot run ann's workflow");

  assert.deepEqual(await workflowKeys(), before, "no run key was written");
  // The next message on the topic is the next accepted run's: nothing was queued in between.
  const taskId = await runOf();
  await messageOf(taskId);
  assert.equal(queued.length, queuedBefore + 1);
});

test("cancelWorkflowRun: LAYRA's operator hash for the owner, idempotent; NOT_FOUND for another user, a prefix user or an unknown run", async () => {
  const taskId = await runOf();
  assert.equal(codeOf(await state.gateway.query(CANCEL, { token: bob, variables: { taskId } })), "NOT_FOUND");
  assert.equal(await taskDb.exists(`workflow:${taskId}:operator`), 0, "bob's request wrote nothing");

  const canceled = await state.gateway.query<{ cancelWorkflowRun: string }>(CANCEL, {
    token: ann,
    variables: { taskId },
  });
  assert.equal(canceled.errors, undefined, JSON.stringify(canceled.errors));
  assert.equal(canceled.data!.cancelWorkflowRun, taskId);
  const operator = await taskDb.hgetall(`workflow:${taskId}:operator`);
  assert.deepEqual(Object.keys(operator).sort(), ["end_time", "status"]);
  assert.equal(operator.status, "canceling");
  assert.match(operator.end_time!, LAYRA_TIME);
  const ttl = await taskDb.ttl(`workflow:${taskId}:operator`);
  assert.ok(ttl > 0 && ttl <= 3600, `the operator hash expires (ttl ${ttl})`);
  const again = await state.gateway.query(CANCEL, { token: ann, variables: { taskId } });
  assert.equal(again.errors, undefined);
  assert.deepEqual(await taskDb.hgetall(`workflow:${taskId}:operator`), operator, "a second request changes nothing");

  const prefixRun = randomUUID();
  await taskDb.hset(`workflow:${prefixRun}`, { status: "pending", username: "ann_x" });
  await taskDb.expire(`workflow:${prefixRun}`, 60);
  for (const other of [prefixRun, randomUUID(), "not-a-uuid", `${taskId}:state`])
    assert.equal(
      codeOf(await state.gateway.query(CANCEL, { token: ann, variables: { taskId: other } })),
      "NOT_FOUND",
      other,
    );
  assert.equal(await taskDb.exists(`workflow:${prefixRun}:operator`), 0);
});

test("resumeWorkflowRun: a debug resume deep-merges the variables into the saved state; an input resume keeps it; an expired state is WORKFLOW_RUN_EXPIRED", async () => {
  const taskId = await runOf();
  await messageOf(taskId);
  const queuedBefore = queued.length;
  const expired = await state.gateway.query(RESUME, {
    token: ann,
    variables: { taskId, mode: "DEBUG", input: { workflowId } },
  });
  assert.equal(codeOf(expired), "WORKFLOW_RUN_EXPIRED");
  assert.equal(expired.errors![0]!.message, "任务过期，请重新执行！");
  assert.equal(await taskDb.xlen(`workflow:events:${taskId}`), 1, "nothing was written for an expired run");

  const saved = {
    global_variables: { answer: "'42'", cfg: { x: "1", y: "2" } },
    execution_status: { node_start: true },
    execution_stack: ["node_code_1"],
    loop_index: {},
    context: { node_start: [] },
    skip_nodes: [],
  };
  await taskDb.setex(`workflow:${taskId}:state`, 100, JSON.stringify(saved));
  await taskDb.hset(`workflow:${taskId}`, { status: "completed", end_time: "then" });
  assert.equal(
    codeOf(
      await state.gateway.query(RESUME, { token: bob, variables: { taskId, mode: "DEBUG", input: { workflowId } } }),
    ),
    "NOT_FOUND",
  );
  const resumed = await state.gateway.query<{ resumeWorkflowRun: string }>(RESUME, {
    token: ann,
    variables: { taskId, mode: "DEBUG", input: { workflowId, globalVariables: { cfg: { x: "9" }, extra: "'new'" } } },
  });
  assert.equal(resumed.errors, undefined, JSON.stringify(resumed.errors));
  assert.equal(resumed.data!.resumeWorkflowRun, taskId);
  const merged = JSON.parse((await taskDb.get(`workflow:${taskId}:state`))!) as typeof saved;
  assert.deepEqual(merged, {
    ...saved,
    global_variables: { answer: "'42'", cfg: { x: "9", y: "2" }, extra: "'new'" },
  });
  assert.ok((await taskDb.ttl(`workflow:${taskId}:state`)) > 100, "the state's hour starts again");
  const hash = await taskDb.hgetall(`workflow:${taskId}`);
  assert.equal(hash.status, "pending");
  assert.equal(hash.end_time, "then", "LAYRA's HSET leaves end_time as it was");
  assert.equal(await taskDb.xlen(`workflow:events:${taskId}`), 2, "a second initializing event");
  const debug = await messageOf(taskId, "debug_resume");
  const data = debug.value.workflow_data as Record<string, unknown>;
  assert.equal(data.debug_resume_task_id, taskId);
  assert.equal(data.input_resume_task_id, "");
  assert.deepEqual(
    data.global_variables,
    { cfg: { x: "9" }, extra: "'new'" },
    "the request's variables, as LAYRA sends them",
  );
  assert.equal(checkWithLayraModel(data), "ok");

  const stateBefore = await taskDb.get(`workflow:${taskId}:state`);
  const input = await state.gateway.query(RESUME, {
    token: ann,
    variables: { taskId, mode: "INPUT", input: { workflowId, userMessage: "more" } },
  });
  assert.equal(input.errors, undefined, JSON.stringify(input.errors));
  const inputMessage = await messageOf(taskId, "input_resume");
  assert.equal((inputMessage.value.workflow_data as Record<string, unknown>).input_resume_task_id, taskId);
  assert.equal((inputMessage.value.workflow_data as Record<string, unknown>).user_message, "more");
  assert.equal(
    await taskDb.get(`workflow:${taskId}:state`),
    stateBefore,
    "an input resume leaves the state to the consumer",
  );
  assert.equal(queued.length, queuedBefore + 2);

  const prefixRun = randomUUID();
  await taskDb.hset(`workflow:${prefixRun}`, { status: "completed", username: "ann_x" });
  await taskDb.setex(`workflow:${prefixRun}:state`, 60, JSON.stringify(saved));
  await taskDb.expire(`workflow:${prefixRun}`, 60);
  assert.equal(
    codeOf(
      await state.gateway.query(RESUME, {
        token: ann,
        variables: { taskId: prefixRun, mode: "INPUT", input: { workflowId } },
      }),
    ),
    "NOT_FOUND",
  );
});

test("a run followed live through workflowRun while a stand-in for LAYRA's consumer reads the worker's forwarded message and runs it", async () => {
  const { gateway, env } = state;
  const workers = await startWorkers(gateway, env, overrides, 1);
  const standIn = new Consumer({
    groupId: `${gateway.config.kafka.groupId}-layra-workflows`,
    clientId: "layra-workflow-consumer",
    bootstrapBrokers: gateway.config.kafka.brokers,
  });
  try {
    const taskId = await runOf();
    const followed = wsOperation(
      gateway.url,
      {
        query: `subscription($taskId: String!) { workflowRun(taskId: $taskId) { status end event { type status node } } }`,
        variables: { taskId },
      },
      { Authorization: `Bearer ${ann}` },
    );
    const stream = await standIn.consume({
      topics: [gateway.config.kafka.unhandledTopic],
      mode: "earliest",
      autocommit: false,
    });
    // Guarded: a message that never comes ends the stream (and fails below) instead of the runner's timeout.
    const guard = setTimeout(() => void stream.close(), 60_000);
    let forwarded: { value: Record<string, unknown>; source: string | undefined } | undefined;
    for await (const message of stream) {
      const value = JSON.parse(message.value.toString()) as Record<string, unknown>;
      if (value.task_id !== taskId) continue;
      const headers = new Map([...message.headers].map(([k, v]) => [k.toString(), v.toString()]));
      forwarded = { value, source: headers.get("x-layra-source") };
      break;
    }
    clearTimeout(guard);
    await stream.close();
    assert.equal(forwarded?.value.type, "workflow", "the worker forwarded the run's message");
    assert.match(forwarded?.source ?? "", new RegExp(`^${gateway.config.kafka.topic}/\\d+/\\d+$`));

    // What LAYRA's consumer writes as it runs the graph.
    const events = `workflow:events:${taskId}`;
    const time = "2025-09-20 21:34:46.123456+08:00";
    await taskDb.hset(`workflow:${taskId}`, "status", "running");
    await taskDb.xadd(
      events,
      "*",
      "type",
      "workflow",
      "status",
      "running",
      "result",
      "",
      "error",
      "",
      "create_time",
      time,
    );
    await taskDb.xadd(
      events,
      "*",
      "type",
      "node",
      "node",
      "node_code_1",
      "status",
      "1",
      "result",
      "{}",
      "error",
      "",
      "create_time",
      time,
    );
    await taskDb.hset(`workflow:${taskId}`, { status: "completed", result: "{}", end_time: time });
    await taskDb.xadd(
      events,
      "*",
      "type",
      "workflow",
      "status",
      "completed",
      "result",
      "{}",
      "error",
      "",
      "create_time",
      time,
    );

    const outcome = await followed;
    assert.equal(outcome.errors, undefined, JSON.stringify(outcome.errors));
    const updates = outcome.results.map((result) => {
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      return (
        result.data as {
          workflowRun: { end: string | null; event: { type: string; status: string; node: string | null } | null };
        }
      ).workflowRun;
    });
    assert.deepEqual(
      updates.filter((update) => update.event).map((update) => update.event),
      [
        { type: "workflow", status: "initializing", node: null },
        { type: "workflow", status: "running", node: null },
        { type: "node", status: "1", node: "node_code_1" },
        { type: "workflow", status: "completed", node: null },
      ],
    );
    assert.equal(updates.at(-1)!.end, "COMPLETED");
  } finally {
    // eslint-disable-next-line @typescript-eslint/await-thenable -- as inspector.close(true) above
    await standIn.close(true);
    await workers();
  }
});

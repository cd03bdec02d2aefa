// Workflow and custom-node writes (the `workflows` and `nodes` shapes in docs/layra-contract.md), and
// starting, resuming and canceling runs the way LAYRA's workflow endpoints do (docs/workflows.md).
import { randomUUID } from "node:crypto";
import type { Context } from "../context.js";
import { BadUserInput, NotFound, WorkflowInvalid, WorkflowRunExpired } from "../errors.js";
import type { WorkflowDoc } from "../stores/documents.js";
import { runCascade } from "../lib/cascade.js";
import { deleteChatflow } from "./conversations.js";
import { ownDocument } from "./owned-reads.js";
import {
  requireFiniteJson,
  requireListLength,
  requireName,
  requireObject,
  requireObjectList,
  requireOwnLayraId,
} from "../lib/input.js";
import { MAX_ID_LENGTH, isWorkflowRunId } from "../lib/layra-ids.js";
import { jsonByteLength } from "../lib/json-size.js";
import {
  WORKFLOW_LIMITS,
  WorkflowShapeError,
  deepUpdate,
  executionEdge,
  executionNode,
  layraTimestamp,
  workflowGraphProblem,
  type LayraWorkflowData,
  type WorkflowTaskMessage,
} from "../lib/workflow-graph.js";

export interface WorkflowInput {
  workflowId?: string | null;
  name: string;
  config?: unknown;
  nodes?: unknown;
  edges?: unknown;
  startNode?: string | null;
  globalVariables?: unknown;
}

/**
 * LAYRA's update_workflow: an upsert keyed by `{workflow_id, username}` that `$set`s the editor
 * state and `is_delete: false` and only `$setOnInsert`s `created_at`.
 */
export async function saveWorkflow(context: Context, username: string, input: WorkflowInput): Promise<WorkflowDoc> {
  const workflowId =
    input.workflowId == null || input.workflowId === ""
      ? `${username}_${randomUUID()}`
      : requireOwnLayraId("workflowId", input.workflowId, username);
  const globalVariables = requireObject("globalVariables", input.globalVariables);
  if (Object.values(globalVariables).some((value) => typeof value !== "string")) {
    throw new BadUserInput("globalVariables", "values must be strings (Python literals, as LAYRA evaluates them)");
  }
  const now = new Date();
  const set = {
    workflow_name: requireName("name", input.name),
    workflow_config: requireObject("config", input.config),
    nodes: requireObjectList("nodes", input.nodes),
    edges: requireObjectList("edges", input.edges),
    start_node: input.startNode ?? "node_start",
    global_variables: globalVariables as Record<string, string>,
    last_modify_at: now,
    is_delete: false,
  };
  await context.stores.mongo.workflows.save(username, workflowId, set, now);
  return (await context.loaders.workflow.clear(workflowId).load(workflowId))!;
}

export async function renameWorkflow(
  context: Context,
  username: string,
  workflowId: string,
  name: string,
): Promise<WorkflowDoc> {
  if (!(await context.stores.mongo.workflows.rename(username, workflowId, requireName("name", name), new Date())))
    throw new NotFound("workflow", workflowId);
  return (await context.loaders.workflow.clear(workflowId).load(workflowId))!;
}

/** The cascade steps deleting every chatflow of a workflow (each with its temp bases), as LAYRA's chatflow delete does. */
async function chatflowDeletions(context: Context, username: string, workflowId: string) {
  const owned = await context.stores.mongo.chatflows.idsOfWorkflow(username, workflowId);
  return owned.map((chatflow_id) => ({
    name: `chatflow ${chatflow_id}`,
    // A chatflow deleted meanwhile by another request is already done.
    run: () =>
      deleteChatflow(context, username, chatflow_id).then(
        () => undefined,
        (error: unknown) => {
          if (!(error instanceof NotFound)) throw error;
        },
      ),
  }));
}

/** LAYRA's delete_workflow: every chatflow of the workflow (with its temp bases), then the workflow. */
export async function deleteWorkflow(context: Context, username: string, workflowId: string): Promise<string> {
  const { workflows } = context.stores.mongo;
  if (!(await workflows.exists(username, workflowId))) throw new NotFound("workflow", workflowId);
  await runCascade(`deleting workflow ${JSON.stringify(workflowId)}`, [
    ...(await chatflowDeletions(context, username, workflowId)),
    { name: "workflow document", run: () => workflows.deleteOwned(username, workflowId) },
  ]);
  return workflowId;
}

/** LAYRA's `DELETE /chatflow/users/{workflow_id}/chatflows`: every chatflow of the workflow; answers how many. */
export async function deleteChatflowsOfWorkflow(context: Context, username: string, workflowId: string) {
  if (!(await context.stores.mongo.workflows.exists(username, workflowId))) throw new NotFound("workflow", workflowId);
  const steps = await chatflowDeletions(context, username, workflowId);
  await runCascade(`deleting the chatflows of workflow ${JSON.stringify(workflowId)}`, steps);
  return steps.length;
}

/** A custom-node name is a key of `custom_nodes`: LAYRA writes it as a dotted path, which `.` or a leading `$` would corrupt. */
function requireNodeName(name: string): string {
  const trimmed = requireName("name", name, 100);
  if (trimmed.includes(".") || trimmed.startsWith("$"))
    throw new BadUserInput("name", 'must not contain "." or start with "$"');
  return trimmed;
}

export async function saveCustomNode(context: Context, username: string, name: string, definition: unknown) {
  const nodeName = requireNodeName(name);
  const node = requireObject("definition", definition);
  await context.stores.mongo.customNodes.save(username, nodeName, node);
  return { name: nodeName, definition: node };
}

export async function deleteCustomNode(context: Context, username: string, name: string): Promise<string> {
  const nodeName = requireNodeName(name);
  if (!(await context.stores.mongo.customNodes.remove(username, nodeName))) throw new NotFound("custom node", nodeName);
  return nodeName;
}

/** A run as LAYRA's `/workflow/execute` request carries it; what is left out comes from the saved workflow. */
export interface RunWorkflowInput {
  workflowId: string;
  /** LAYRA's execute shape (`{id, type, data: {name, ...}}`); default: the saved editor nodes as LAYRA's editor sends them. */
  nodes?: unknown;
  edges?: unknown;
  globalVariables?: unknown;
  startNode?: string | null;
  breakpoints?: readonly string[] | null;
  userMessage?: string | null;
  parentId?: string | null;
  chatflowId?: string | null;
  tempDbId?: string | null;
  dockerImageUse?: string | null;
  needSaveImage?: string | null;
}

export type ResumeMode = "DEBUG" | "INPUT";

// A Docker image reference LAYRA prefixes with `sandbox-{username}-`: a name, then an optional tag.
const IMAGE = /^[a-z0-9][a-z0-9._-]{0,127}(:[A-Za-z0-9._-]{1,128})?$/;

function requireJsonObjects(argument: string, value: unknown, max: number): Record<string, unknown>[] {
  if (!Array.isArray(value) || value.some((item) => item === null || typeof item !== "object" || Array.isArray(item)))
    throw new BadUserInput(argument, "must be a JSON array of objects");
  requireListLength(argument, value, max);
  requireFiniteJson(argument, value);
  return value as Record<string, unknown>[];
}

function requireText(argument: string, value: string | null | undefined, max: number, fallback = ""): string {
  const text = value ?? fallback;
  if (text.length > max) throw new BadUserInput(argument, `must be at most ${max} characters`);
  return text;
}

function requireImage(argument: string, value: string, needsTag: boolean): string {
  if (value !== "" && (!IMAGE.test(value) || (needsTag && !value.includes(":"))))
    throw new BadUserInput(argument, `must be a Docker image name${needsTag ? " with a :tag" : ""}`);
  return value;
}

/** The run's `Workflow.model_dump()`, every input bounded before anything is written. */
async function workflowData(
  context: Context,
  username: string,
  doc: WorkflowDoc,
  input: RunWorkflowInput,
): Promise<LayraWorkflowData> {
  const nodes = requireJsonObjects(
    "nodes",
    input.nodes ?? requireJsonObjects("nodes", doc.nodes, WORKFLOW_LIMITS.nodes).map(executionNode),
    WORKFLOW_LIMITS.nodes,
  );
  // LAYRA's HSET of the node statuses fails on an empty mapping, after the run hash is written.
  if (nodes.length === 0) throw new BadUserInput("nodes", "must hold at least one node");
  for (const node of nodes) {
    if (typeof node.id !== "string" || node.id === "" || node.id.length > MAX_ID_LENGTH)
      throw new BadUserInput("nodes", `every node needs a string id of 1 to ${MAX_ID_LENGTH} characters`);
    const code = (node.data as { code?: unknown } | undefined)?.code;
    if (typeof code === "string" && code.length > WORKFLOW_LIMITS.codeChars)
      throw new BadUserInput("nodes", `node ${node.id}: code must be at most ${WORKFLOW_LIMITS.codeChars} characters`);
  }
  const edges = requireJsonObjects(
    "edges",
    input.edges ?? requireJsonObjects("edges", doc.edges, WORKFLOW_LIMITS.edges).map(executionEdge),
    WORKFLOW_LIMITS.edges,
  );
  const globalVariables = requireObject("globalVariables", input.globalVariables ?? doc.global_variables);
  requireFiniteJson("globalVariables", globalVariables);
  requireListLength("globalVariables", Object.keys(globalVariables), WORKFLOW_LIMITS.globalVariables);
  const breakpoints = requireListLength("breakpoints", input.breakpoints ?? [], WORKFLOW_LIMITS.nodes);

  const chatflowId = input.chatflowId ? requireOwnLayraId("chatflowId", input.chatflowId, username) : "";
  const tempDbId = requireText("tempDbId", input.tempDbId, MAX_ID_LENGTH);
  // LAYRA's engine searches this base for the run: only one of the caller's may be named.
  if (tempDbId !== "") await ownDocument(context, "knowledgeBase", "knowledge base", tempDbId);
  const savedImage = doc.workflow_config.docker_image_use;
  return {
    username,
    nodes,
    edges,
    start_node: requireText("startNode", input.startNode, MAX_ID_LENGTH, doc.start_node || "node_start"),
    global_variables: globalVariables,
    debug_resume_task_id: "",
    breakpoints: [...breakpoints],
    input_resume_task_id: "",
    user_message: requireText("userMessage", input.userMessage, WORKFLOW_LIMITS.userMessageChars),
    parent_id: requireText("parentId", input.parentId, MAX_ID_LENGTH),
    temp_db_id: tempDbId,
    chatflow_id: chatflowId,
    docker_image_use: requireImage(
      "dockerImageUse",
      input.dockerImageUse ?? (typeof savedImage === "string" ? savedImage : ""),
      false,
    ),
    need_save_image: requireImage("needSaveImage", input.needSaveImage ?? "", true),
  };
}

/** LAYRA's WorkflowEngine construction checks, as typed errors (docs/workflows.md, "Starting a run"). */
function requireValidGraph(data: LayraWorkflowData): void {
  let problem: string | null;
  try {
    problem = workflowGraphProblem(data.nodes, data.edges, data.start_node);
  } catch (error) {
    if (error instanceof WorkflowShapeError) throw new WorkflowInvalid(`System Error: ${error.message}`, -3);
    throw error;
  }
  if (problem !== null) throw new WorkflowInvalid(problem, -1);
}

/** The state a resume continues from; LAYRA's message when it expired. */
async function savedState(context: Context, username: string, taskId: string): Promise<string> {
  const runs = context.stores.redis.workflowRuns;
  if (!isWorkflowRunId(taskId) || (await runs.owner(taskId)) !== username) throw new NotFound("workflow run", taskId);
  const state = await runs.state(taskId);
  if (state === null) throw new WorkflowRunExpired(taskId);
  return state;
}

/** A debug resume's state with the run's variables deep-merged in, as LAYRA's endpoint writes it back. */
function mergedState(taskId: string, stateText: string, data: LayraWorkflowData, variablesGiven: boolean): string {
  let state: unknown;
  try {
    state = JSON.parse(stateText);
  } catch {
    throw new WorkflowRunExpired(taskId);
  }
  const saved = (state as { global_variables?: unknown } | null)?.global_variables;
  if (saved === null || typeof saved !== "object" || Array.isArray(saved)) throw new WorkflowRunExpired(taskId);
  // Resuming without variables continues with the paused run's own, not the saved workflow's initial ones.
  if (!variablesGiven) data.global_variables = structuredClone(saved as Record<string, unknown>);
  deepUpdate(saved as Record<string, unknown>, data.global_variables);
  return JSON.stringify(state);
}

/** Writes the run's keys and queues LAYRA's message; a new run whose message was not queued is taken back. */
async function queueRun(context: Context, message: WorkflowTaskMessage, state: string | undefined, isNew: boolean) {
  const size = jsonByteLength(message, WORKFLOW_LIMITS.messageBytes);
  if (size > WORKFLOW_LIMITS.messageBytes)
    throw new BadUserInput("input", `the run's message must be at most ${WORKFLOW_LIMITS.messageBytes} bytes of JSON`);
  const { workflowRuns } = context.stores.redis;
  const taskId = message.task_id;
  await workflowRuns.queue({
    taskId,
    username: message.username,
    time: layraTimestamp(new Date()),
    nodeIds: message.workflow_data.nodes.map((node) => node.id as string),
    ...(state === undefined ? {} : { state }),
  });
  try {
    await context.stores.kafka.produceWorkflowTask(message);
  } catch (error) {
    if (isNew) await workflowRuns.discard(taskId).catch(() => undefined);
    throw error;
  }
  return taskId;
}

/** LAYRA's `POST /workflow/execute` for one of the caller's workflows: answers the new run's task id. */
export async function runWorkflow(context: Context, username: string, input: RunWorkflowInput): Promise<string> {
  const doc = await ownDocument(context, "workflow", "workflow", input.workflowId);
  const data = await workflowData(context, username, doc, input);
  requireValidGraph(data);
  const taskId = randomUUID();
  return queueRun(context, { type: "workflow", task_id: taskId, username, workflow_data: data }, undefined, true);
}

/**
 * LAYRA's execute with `debug_resume_task_id` (after a breakpoint) or `input_resume_task_id` (after a
 * chat input): the same task id goes on from its saved state `workflow:{id}:state`.
 */
export async function resumeWorkflowRun(
  context: Context,
  username: string,
  taskId: string,
  mode: ResumeMode,
  input: RunWorkflowInput,
): Promise<string> {
  const doc = await ownDocument(context, "workflow", "workflow", input.workflowId);
  const data = await workflowData(context, username, doc, input);
  const stateText = await savedState(context, username, taskId);
  let state: string | undefined;
  if (mode === "DEBUG") {
    state = mergedState(taskId, stateText, data, input.globalVariables != null);
    data.debug_resume_task_id = taskId;
  } else {
    data.input_resume_task_id = taskId;
  }
  requireValidGraph(data);
  const type = mode === "DEBUG" ? "debug_resume" : "input_resume";
  return queueRun(context, { type, task_id: taskId, username, workflow_data: data }, state, false);
}

/** LAYRA's cancel: asks the run's consumer to stop (`workflow:{id}:operator`); idempotent; answers the task id. */
export async function cancelWorkflowRun(context: Context, username: string, taskId: string): Promise<string> {
  const requested =
    isWorkflowRunId(taskId) &&
    (await context.stores.redis.workflowRuns.requestCancel(taskId, username, layraTimestamp(new Date())));
  if (!requested) throw new NotFound("workflow run", taskId);
  return taskId;
}

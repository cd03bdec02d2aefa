// Workflow and custom-node writes (the `workflows` and `nodes` shapes in docs/layra-contract.md).
import { randomUUID } from "node:crypto";
import type { Context } from "../context.js";
import { BadUserInput, NotFound } from "../errors.js";
import type { WorkflowDoc } from "../stores/documents.js";
import { runCascade } from "../lib/cascade.js";
import { deleteChatflow } from "./conversations.js";
import { requireName, requireObject, requireObjectList, requireOwnLayraId } from "../lib/input.js";

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

/** LAYRA's delete_workflow: every chatflow of the workflow (with its temp bases), then the workflow. */
export async function deleteWorkflow(context: Context, username: string, workflowId: string): Promise<string> {
  const { workflows, chatflows } = context.stores.mongo;
  if (!(await workflows.exists(username, workflowId))) throw new NotFound("workflow", workflowId);
  const owned = await chatflows.idsOfWorkflow(username, workflowId);
  await runCascade(`deleting workflow ${JSON.stringify(workflowId)}`, [
    ...owned.map((chatflow_id) => ({
      name: `chatflow ${chatflow_id}`,
      // A chatflow deleted meanwhile by another request is already done.
      run: () =>
        deleteChatflow(context, username, chatflow_id).catch((error) => {
          if (!(error instanceof NotFound)) throw error;
        }),
    })),
    { name: "workflow document", run: () => workflows.deleteOwned(username, workflowId) },
  ]);
  return workflowId;
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

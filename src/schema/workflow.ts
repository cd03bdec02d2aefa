import type { WorkflowDoc } from "../stores/documents.js";
import { listConnection } from "../lib/pagination.js";
import { chatflowsOfWorkflow } from "../resolvers/owned-reads.js";
import {
  cancelWorkflowRun,
  deleteChatflowsOfWorkflow,
  resumeWorkflowRun,
  runWorkflow,
} from "../resolvers/workflows.js";
import { builder } from "./builder.js";
import { hasKeys } from "./global-id.js";
import { Chatflow } from "./conversation.js";

export const Workflow = builder.objectRef<WorkflowDoc>("Workflow");

builder.node(Workflow, {
  description: "An agent workflow as LAYRA's editor saved it (React-Flow nodes and edges).",
  id: { resolve: (w) => w.workflow_id },
  isTypeOf: (value) => hasKeys(value, "workflow_id", "workflow_name"),
  loadMany: (ids, context) => ids.map((id) => context.loaders.workflow.load(id)),
  fields: (t) => ({
    workflowId: t.exposeString("workflow_id"),
    name: t.exposeString("workflow_name"),
    config: t.expose("workflow_config", { type: "JSON" }),
    nodes: t.expose("nodes", { type: "JSON" }),
    edges: t.expose("edges", { type: "JSON" }),
    startNode: t.exposeString("start_node"),
    globalVariables: t.expose("global_variables", { type: "JSON", description: "{name: Python-literal string}" }),
    createdAt: t.expose("created_at", { type: "DateTime" }),
    lastModifiedAt: t.expose("last_modify_at", { type: "DateTime" }),
    chatflows: t.connection({
      type: Chatflow,
      description: "The workflow's chatflows, most recently changed first; each page reads only its window.",
      resolve: (w, args, context) => listConnection(args, chatflowsOfWorkflow(context, w.workflow_id)),
    }),
  }),
});

const RunWorkflowInput = builder.inputType("RunWorkflowInput", {
  description:
    "What LAYRA's `POST /workflow/execute` carries, for one of the caller's workflows: what is left out comes from the saved workflow (nodes and edges converted as LAYRA's editor sends them).",
  fields: (t) => ({
    workflowId: t.string({ required: true }),
    nodes: t.field({
      type: "JSON",
      description:
        "LAYRA's execute shape: [{id, type, data: {name, ...}}]. Default: the saved editor nodes, converted.",
    }),
    edges: t.field({
      type: "JSON",
      description:
        "[{source, target, sourceHandle?}] (condition-{n}, loop_body, loop_next). Default: the saved edges, converted.",
    }),
    globalVariables: t.field({
      type: "JSON",
      description: "{name: Python-literal string}. Default: the saved ones; on a DEBUG resume, the paused run's own.",
    }),
    startNode: t.string({ description: "Default: the saved start node." }),
    breakpoints: t.stringList({ description: "Node ids to pause before (a debug run). Default none." }),
    userMessage: t.string({ description: "The chat input of a chatflow run." }),
    parentId: t.string({ description: "The message this turn answers (chatflows)." }),
    chatflowId: t.string({ description: "The caller's chatflow `{username}_{uuid4}` the run's turns go to." }),
    tempDbId: t.string({ description: "One of the caller's (temporary) knowledge bases the run may search." }),
    dockerImageUse: t.string({ description: "The code sandbox image. Default: the saved workflow config's." }),
    needSaveImage: t.string({ description: "name:tag to save the sandbox as once the run ends." }),
  }),
});

const WorkflowResumeMode = builder.enumType("WorkflowResumeMode", {
  description: "How a paused run goes on (LAYRA's debug_resume_task_id or input_resume_task_id).",
  values: {
    DEBUG: { description: "After a breakpoint; the given variables are deep-merged into the saved state." },
    INPUT: { description: "After the run asked for chat input (`userMessage`)." },
  } as const,
});

builder.mutationFields((fields) => {
  const t = fields.withAuth({ loggedIn: true });
  return {
    runWorkflow: t.string({
      nullable: true,
      description:
        "Checks the graph as LAYRA's engine does, writes the run's keys and queues it for LAYRA's workflow consumer; answers the task id at once (follow it with workflowRun).",
      args: { input: t.arg({ type: RunWorkflowInput, required: true }) },
      resolve: (_root, args, context) => runWorkflow(context, context.viewer.username, args.input),
    }),
    resumeWorkflowRun: t.string({
      nullable: true,
      description:
        "Goes on with a paused run of the caller's from its saved state; WORKFLOW_RUN_EXPIRED once that expired. Answers the same task id.",
      args: {
        taskId: t.arg.string({ required: true }),
        mode: t.arg({ type: WorkflowResumeMode, required: true }),
        input: t.arg({ type: RunWorkflowInput, required: true }),
      },
      resolve: (_root, args, context) =>
        resumeWorkflowRun(context, context.viewer.username, args.taskId, args.mode, args.input),
    }),
    cancelWorkflowRun: t.string({
      nullable: true,
      description:
        "Asks LAYRA's consumer to stop one of the caller's runs (it stops before the run starts or at its next node); idempotent; answers the task id.",
      args: { taskId: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => cancelWorkflowRun(context, context.viewer.username, args.taskId),
    }),
    deleteChatflowsOfWorkflow: t.int({
      nullable: true,
      description:
        "Deletes every chatflow of one of the caller's workflows (with their temp knowledge bases); answers how many.",
      args: { workflowId: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => deleteChatflowsOfWorkflow(context, context.viewer.username, args.workflowId),
    }),
  };
});

import type { WorkflowDoc } from "../stores/documents.js";
import { listConnection } from "../lib/pagination.js";
import { chatflowsOfWorkflow } from "../resolvers/owned-reads.js";
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

import {
  deleteCustomNode,
  deleteWorkflow,
  renameWorkflow,
  saveCustomNode,
  saveWorkflow,
} from "../resolvers/workflows.js";
import { builder } from "./builder.js";
import { CustomNode } from "./viewer.js";
import { Workflow } from "./workflow.js";

const SaveWorkflowInput = builder.inputType("SaveWorkflowInput", {
  description: "The editor state LAYRA's `POST /workflow/workflows` upserts.",
  fields: (t) => ({
    workflowId: t.string({
      description: 'Left out or "" creates a workflow; else the caller\'s `{username}_{uuid4}`.',
    }),
    name: t.string({ required: true }),
    config: t.field({ type: "JSON", required: true, description: 'e.g. {docker_image_use: "python-sandbox:latest"}' }),
    nodes: t.field({ type: "JSON", required: true, description: "React-Flow nodes (objects)." }),
    edges: t.field({ type: "JSON", required: true, description: "React-Flow edges (objects)." }),
    startNode: t.string({ description: "Default node_start." }),
    globalVariables: t.field({ type: "JSON", required: true, description: "{name: Python-literal string}" }),
  }),
});

builder.mutationFields((fields) => {
  const t = fields.withAuth({ loggedIn: true });
  return {
    saveWorkflow: t.field({
      nullable: true,
      type: Workflow,
      args: { input: t.arg({ type: SaveWorkflowInput, required: true }) },
      resolve: (_root, args, context) => saveWorkflow(context, context.viewer.username, args.input),
    }),
    renameWorkflow: t.field({
      nullable: true,
      type: Workflow,
      args: { workflowId: t.arg.string({ required: true }), name: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => renameWorkflow(context, context.viewer.username, args.workflowId, args.name),
    }),
    deleteWorkflow: t.string({
      nullable: true,
      description: "Deletes a workflow and its chatflows (with their temp knowledge bases); answers its id.",
      args: { workflowId: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => deleteWorkflow(context, context.viewer.username, args.workflowId),
    }),
    saveCustomNode: t.field({
      nullable: true,
      type: CustomNode,
      description: 'Saves (or replaces) a custom node; a name with "." or a leading "$" is refused.',
      args: { name: t.arg.string({ required: true }), definition: t.arg({ type: "JSON", required: true }) },
      resolve: (_root, args, context) => saveCustomNode(context, context.viewer.username, args.name, args.definition),
    }),
    deleteCustomNode: t.string({
      nullable: true,
      args: { name: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => deleteCustomNode(context, context.viewer.username, args.name),
    }),
  };
});

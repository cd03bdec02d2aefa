// Live progress subscriptions: LAYRA's ingestion tasks and workflow runs (docs/architecture.md, "Live progress").
import type { AuthenticatedContext, Context } from "../context.js";
import { createLoaders } from "../loaders/index.js";
import {
  taskProgress,
  workflowRun,
  type ProgressDeps,
  type TaskProgressEvent,
  type WorkflowRunEvent,
  type WorkflowStreamEvent,
} from "../resolvers/progress.js";
import { builder } from "./builder.js";
import { whileTokenValid } from "../resolvers/auth.js";

builder.subscriptionType({});

const ProgressEnd = builder.enumType("ProgressEnd", {
  description: "Why a progress stream ended. Set only on its last event.",
  values: {
    COMPLETED: { description: "The task or run completed." },
    FAILED: { description: "The task or run failed." },
    CANCELED: { description: "The workflow run was canceled." },
    PAUSED: {
      description: "The workflow run paused at a breakpoint or for chat input (its hash still says completed).",
    },
    DELETED: { description: "The key was deleted (or vanished while Redis was unreachable)." },
    EXPIRED: { description: "The key expired (LAYRA keeps progress for one hour)." },
    NOT_FOUND: { description: "No such key of the caller's appeared within the configured wait." },
  } as const,
});

/** What both progress streams' events carry: whose, when read, and how the stream ended. */
const ProgressUpdate = builder.interfaceRef<TaskProgressEvent | WorkflowRunEvent>("ProgressUpdate").implement({
  description: "One event of a live progress stream (taskProgress, workflowRun).",
  resolveType: (update) => ("event" in update ? "WorkflowRun" : "TaskProgress"),
  fields: (t) => ({
    taskId: t.exposeString("taskId"),
    status: t.exposeString("status", { nullable: true, description: "The status LAYRA wrote for the task or run." }),
    observedAt: t.expose("observedAt", {
      type: "DateTime",
      description: "When the gateway read this state from Redis.",
    }),
    resumed: t.exposeBoolean("resumed", {
      description: "A snapshot sent again after Redis came back; changes follow as usual.",
    }),
    end: t.expose("end", { type: ProgressEnd, nullable: true, description: "Set on the last event only." }),
    endReason: t.exposeString("endReason", { nullable: true }),
  }),
});

const TaskProgress = builder.objectRef<TaskProgressEvent>("TaskProgress").implement({
  description: "One state of LAYRA's ingestion task hash `task:{taskId}`. Fields are null only on a NOT_FOUND event.",
  interfaces: [ProgressUpdate],
  fields: (t) => ({
    status: t.exposeString("status", { nullable: true, description: "processing, completed or failed" }),
    processed: t.exposeInt("processed", { nullable: true, description: "Files processed successfully." }),
    total: t.exposeInt("total", { nullable: true, description: "Files in the upload." }),
    percent: t.exposeFloat("percent", {
      nullable: true,
      description: "processed/total*100 to one decimal; 0 when total is 0.",
    }),
    message: t.exposeString("message", { nullable: true }),
    currentFile: t.exposeString("currentFile", {
      nullable: true,
      description: "The file a gateway worker is on (null for tasks LAYRA's own consumers run).",
    }),
    pagesDone: t.exposeInt("pagesDone", { nullable: true, description: "Pages of currentFile embedded and stored." }),
    pagesTotal: t.exposeInt("pagesTotal", { nullable: true, description: "Pages of currentFile." }),
    failedFiles: t.exposeStringList("failedFiles", {
      description: "Names of the files that failed so far; the final message says why.",
    }),
  }),
});

const WorkflowEvent = builder.objectRef<WorkflowStreamEvent>("WorkflowEvent").implement({
  description: "One entry of the run's stream `workflow:events:{taskId}`.",
  fields: (t) => ({
    id: t.exposeString("id", { description: "The Redis stream entry id." }),
    type: t.exposeString("type", { nullable: true, description: "workflow, node, ai_chunk or mcp" }),
    status: t.exposeString("status", { nullable: true }),
    node: t.exposeString("node", { nullable: true, description: "The node id (`node` or `node_id`)." }),
    messageId: t.exposeString("messageId", { nullable: true }),
    createTime: t.exposeString("createTime", {
      nullable: true,
      description: "LAYRA's own timestamp text, e.g. 2025-09-20 21:34:46.123456+08:00",
    }),
    fields: t.expose("fields", { type: "JSON", description: "Every field of the entry, as LAYRA wrote it (strings)." }),
  }),
});

const WorkflowRun = builder.objectRef<WorkflowRunEvent>("WorkflowRun").implement({
  description:
    "A workflow run update: a change of its status hash `workflow:{taskId}`, or one entry of its event stream.",
  interfaces: [ProgressUpdate],
  fields: (t) => ({
    status: t.exposeString("status", {
      nullable: true,
      description: "The hash status: pending, running, completed, failed or canceled.",
    }),
    username: t.exposeString("username", { nullable: true }),
    startTime: t.exposeString("startTime", { nullable: true }),
    endTime: t.exposeString("endTime", { nullable: true }),
    error: t.exposeString("error", { nullable: true }),
    event: t.expose("event", {
      type: WorkflowEvent,
      nullable: true,
      description: "Null when this update is a change of the status hash.",
    }),
  }),
});

function progressDeps(context: AuthenticatedContext): ProgressDeps {
  return {
    watcher: context.live.progress,
    viewer: context.viewer,
    missingKeyWaitMs: context.config.progress.missingKeyWaitMs,
  };
}

/** A subscription's context is shared by all its events: give each event fresh DataLoaders (pothos#1421). */
export function freshLoaders<T>(event: T, context: Context): T {
  context.loaders = createLoaders(context.stores, context.viewer);
  return event;
}

builder.subscriptionFields((fields) => {
  const t = fields.withAuth({ loggedIn: true });
  return {
    taskProgress: t.field({
      type: TaskProgress,
      description:
        "LAYRA's ingestion progress for one upload: the current state at once, then every change to what was selected, until a terminal status or the key goes away.",
      // Successive states of one task: each subscriber is sent only changes to what it selected
      // (useSharedEventResults, src/live/shared-events.ts).
      extensions: { distinctResults: true },
      args: {
        taskId: t.arg.string({ required: true, description: "`{username}_{uuid4}`, as LAYRA's upload answered." }),
      },
      subscribe: (_root, args, context) =>
        whileTokenValid(context.live.tokenChecks, context.viewer, taskProgress(progressDeps(context), args.taskId)),
      resolve: (event, _args, context) => freshLoaders(event, context),
    }),
    workflowRun: t.field({
      type: WorkflowRun,
      description:
        "A workflow run: its status hash at once and on every change, and every entry of its event stream from the start, until the stream says it ended.",
      args: { taskId: t.arg.string({ required: true }) },
      subscribe: (_root, args, context) =>
        whileTokenValid(context.live.tokenChecks, context.viewer, workflowRun(progressDeps(context), args.taskId)),
      resolve: (event, _args, context) => freshLoaders(event, context),
    }),
  };
});

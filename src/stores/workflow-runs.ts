// LAYRA's workflow run keys in the task database (docs/layra-contract.md, "DB 1: workflow runs"), written
// the way its execute and cancel endpoints write them. The live reading is src/resolvers/progress.ts's.
import type { Redis } from "ioredis";
import { observeStoreCall } from "./observe.js";

/** LAYRA's expiry of every run key, renewed by its consumer as the run goes. */
const WORKFLOW_RUN_TTL_SECONDS = 3600;

const runKey = (taskId: string) => `workflow:${taskId}`;
const nodesKey = (taskId: string) => `workflow:${taskId}:nodes`;
const stateKey = (taskId: string) => `workflow:${taskId}:state`;
const operatorKey = (taskId: string) => `workflow:${taskId}:operator`;
const eventsKey = (taskId: string) => `workflow:events:${taskId}`;

// The owner check and the write in one step, so a run that expires in between is not half-recreated.
// The operator hash expires with the run (LAYRA leaves it without expiry until its consumer renews it),
// and a second request (or one after the consumer's `canceled`) changes nothing.
const REQUEST_CANCEL = `
if redis.call("HGET", KEYS[1], "username") ~= ARGV[1] then return 0 end
local status = redis.call("HGET", KEYS[2], "status")
if status ~= "canceling" and status ~= "canceled" then
  redis.call("HSET", KEYS[2], "status", "canceling", "end_time", ARGV[2])
end
redis.call("EXPIRE", KEYS[2], ARGV[3])
return 1`;

export interface QueuedRun {
  taskId: string;
  username: string;
  /** LAYRA's `str(beijing_time_now())`. */
  time: string;
  nodeIds: string[];
  /** A debug resume's merged state, written back with its expiry. */
  state?: string;
}

export function workflowRuns(redis: Redis) {
  return {
    /** The run's owner, null when it does not exist (or expired). */
    owner: (taskId: string) =>
      observeStoreCall("redis", () => redis.hget(runKey(taskId), "username"), "workflowRun.owner"),
    /** The saved state of a paused run (JSON text), null once it expired. */
    state: (taskId: string) => observeStoreCall("redis", () => redis.get(stateKey(taskId)), "workflowRun.state"),
    /**
     * What LAYRA's execute endpoint writes before it produces the message, in one transaction: the
     * status hash, every node at "0", the `initializing` event, each with LAYRA's one-hour expiry.
     */
    queue: (run: QueuedRun) =>
      observeStoreCall(
        "redis",
        async () => {
          const multi = redis.multi();
          if (run.state !== undefined) multi.setex(stateKey(run.taskId), WORKFLOW_RUN_TTL_SECONDS, run.state);
          multi
            .hset(runKey(run.taskId), {
              status: "pending",
              username: run.username,
              start_time: run.time,
              result: "",
              error: "",
            })
            .hset(nodesKey(run.taskId), Object.fromEntries(run.nodeIds.map((id) => [id, "0"])))
            .xadd(
              eventsKey(run.taskId),
              "*",
              ...["type", "workflow", "status", "initializing", "result", "", "error", "", "create_time", run.time],
            )
            .expire(runKey(run.taskId), WORKFLOW_RUN_TTL_SECONDS)
            .expire(nodesKey(run.taskId), WORKFLOW_RUN_TTL_SECONDS)
            .expire(eventsKey(run.taskId), WORKFLOW_RUN_TTL_SECONDS);
          const results = await multi.exec();
          const failed = results?.find(([error]) => error);
          if (failed) throw failed[0] as Error;
        },
        "workflowRun.queue",
      ),
    /** Takes back a new run whose message could not be queued, so no run stays `pending` for nobody. */
    discard: (taskId: string) =>
      observeStoreCall(
        "redis",
        () => redis.del(runKey(taskId), nodesKey(taskId), eventsKey(taskId)),
        "workflowRun.discard",
      ),
    /** LAYRA's cancel: `workflow:{id}:operator` says canceling. False when the run is not `username`'s (or gone). */
    requestCancel: (taskId: string, username: string, time: string) =>
      observeStoreCall(
        "redis",
        async () =>
          (await redis.eval(
            REQUEST_CANCEL,
            2,
            runKey(taskId),
            operatorKey(taskId),
            username,
            time,
            WORKFLOW_RUN_TTL_SECONDS,
          )) === 1,
        "workflowRun.requestCancel",
      ),
  };
}

export type WorkflowRuns = ReturnType<typeof workflowRuns>;

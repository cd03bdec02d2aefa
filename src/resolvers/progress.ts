// The live progress streams, free of any transport: plain EventChannels that graphql-ws and SSE both serve.
// When a stream ends, with a last event saying why: docs/architecture.md, "Live progress".
import type { Viewer } from "../context.js";
import { BadUserInput } from "../errors.js";
import type { HashState, ProgressWatcher } from "../live/progress-watcher.js";
import type { StreamEntry } from "../stores/progress-keys.js";
import { EventChannel } from "../live/event-channel.js";
import { isOwnId } from "../lib/layra-ids.js";
import { MAX_ID_LENGTH } from "../lib/layra-ids.js";

type ProgressEnd = "COMPLETED" | "FAILED" | "CANCELED" | "PAUSED" | "DELETED" | "EXPIRED" | "NOT_FOUND";

export interface ProgressDeps {
  watcher: ProgressWatcher;
  viewer: Viewer;
  missingKeyWaitMs: number;
}

interface Ending {
  end: ProgressEnd | null;
  endReason: string | null;
  /** True for a snapshot re-sent after Redis came back. */
  resumed: boolean;
  observedAt: Date;
}

export interface TaskProgressEvent extends Ending {
  taskId: string;
  status: string | null;
  processed: number | null;
  total: number | null;
  /** LAYRA's SSE value: processed/total*100 to one decimal, 0 when total is 0. */
  percent: number | null;
  message: string | null;
  /** The gateway worker's page-level fields (absent from tasks LAYRA's own consumers run). */
  currentFile: string | null;
  pagesDone: number | null;
  pagesTotal: number | null;
  failedFiles: string[];
}

export interface WorkflowStreamEvent {
  id: string;
  type: string | null;
  status: string | null;
  node: string | null;
  messageId: string | null;
  createTime: string | null;
  fields: Record<string, string>;
}

export interface WorkflowRunEvent extends Ending {
  taskId: string;
  status: string | null;
  username: string | null;
  startTime: string | null;
  endTime: string | null;
  error: string | null;
  /** The stream entry this update carries; null for a change of the run's status hash. */
  event: WorkflowStreamEvent | null;
}

const TASK_TERMINAL: Record<string, ProgressEnd> = { completed: "COMPLETED", failed: "FAILED" };
// LAYRA's own reader stops on these workflow statuses; a paused run's hash even says "completed".
const RUN_TERMINAL: Record<string, ProgressEnd> = {
  completed: "COMPLETED",
  failed: "FAILED",
  canceled: "CANCELED",
  pause: "PAUSED",
  vlm_input: "PAUSED",
};
const STREAM_RETRY_MS = 250;
/**
 * LAYRA's process_file ends a task with two writes, `status` then `message`, one Redis round trip
 * apart: a terminal status of its writer is sent with the write after it, or after this long.
 */
const LAYRA_FINAL_WRITE_WAIT_MS = 1_000;

/** The gateway's worker ends a task in one script and marks every file (`file:{file_id}`); LAYRA's does neither. */
const writtenAtOnce = (fields: Record<string, string>) => Object.keys(fields).some((name) => name.startsWith("file:"));

// LAYRA's ids are uuid4s or `{username}_{uuid4}`: no ":" so an id cannot name a neighbouring key
// (`workflow:{id}:state`, `workflow:events:{id}`).
function checkId(taskId: string): void {
  if (taskId.length === 0 || taskId.length > MAX_ID_LENGTH || /[\s:*?[\]]/.test(taskId)) {
    throw new BadUserInput("taskId", `must be 1 to ${MAX_ID_LENGTH} characters without spaces, ":" or glob characters`);
  }
}

function count(value: string | undefined): number | null {
  if (value === undefined || !/^-?\d+$/.test(value.trim())) return null;
  return Number.parseInt(value, 10);
}

/** A JSON array of strings written by the worker; anything else reads as none. */
function nameList(value: string | undefined): string[] {
  if (!value) return [];
  try {
    const parsed: unknown = JSON.parse(value);
    return Array.isArray(parsed)
      ? parsed.filter((item): item is string => typeof item === "string").slice(0, 1000)
      : [];
  } catch {
    return [];
  }
}

export function percentOf(processed: number | null, total: number | null): number | null {
  if (processed === null || total === null) return null;
  if (total === 0) return 0;
  return Number(((processed / total) * 100).toFixed(1));
}

const goneEnd = (state: HashState): ProgressEnd => (state.gone === "expired" ? "EXPIRED" : "DELETED");

/** Arms the bounded wait for a key that does not exist (or is not the caller's). */
function missingKeyTimer<T>(channel: EventChannel<T>, waitMs: number, onTimeout: () => void): { clear(): void } {
  let timer: NodeJS.Timeout | null = setTimeout(() => {
    timer = null;
    onTimeout();
    channel.end();
  }, waitMs);
  const clear = () => {
    if (timer) clearTimeout(timer);
    timer = null;
  };
  channel.onEnd(clear);
  return { clear };
}

/** One event per state read, shared by every subscriber of the task (a fan-out allocates it once). */
const taskEvents = new WeakMap<HashState, TaskProgressEvent>();

function sharedTaskEvent(taskId: string, fields: Record<string, string>, state: HashState): TaskProgressEvent {
  let event = taskEvents.get(state);
  if (!event) taskEvents.set(state, (event = taskEvent(taskId, fields, state)));
  return event;
}

function taskEvent(taskId: string, fields: Record<string, string>, state: HashState): TaskProgressEvent {
  const processed = count(fields.processed);
  const total = count(fields.total);
  const status = fields.status ?? null;
  const end = status ? (TASK_TERMINAL[status] ?? null) : null;
  return {
    taskId,
    status,
    processed,
    total,
    percent: percentOf(processed, total),
    message: fields.message ?? null,
    currentFile: fields.current_file ?? null,
    pagesDone: count(fields.file_pages_done),
    pagesTotal: count(fields.file_pages_total),
    failedFiles: nameList(fields.failed_files),
    observedAt: state.observedAt,
    resumed: state.resumed,
    end,
    endReason: end ? `the task ${status}` : null,
  };
}

/** `taskProgress(taskId)`: LAYRA's ingestion progress hash `task:{taskId}` (docs/layra-contract.md, "Redis"). */
export function taskProgress(deps: ProgressDeps, taskId: string): AsyncIterable<TaskProgressEvent> {
  checkId(taskId);
  const channel = new EventChannel<TaskProgressEvent>();
  const notFound = missingKeyTimer(channel, deps.missingKeyWaitMs, () =>
    channel.push({
      taskId,
      status: null,
      processed: null,
      total: null,
      percent: null,
      message: null,
      currentFile: null,
      pagesDone: null,
      pagesTotal: null,
      failedFiles: [],
      observedAt: new Date(),
      resumed: false,
      end: "NOT_FOUND",
      endReason: `no task ${JSON.stringify(taskId)} appeared within ${deps.missingKeyWaitMs} ms`,
    }),
  );
  // A task's only link to its owner is its id, `{username}_{uuid4}`, parsed whole and compared exactly.
  if (!isOwnId(taskId, deps.viewer.username)) return channel;

  let last: TaskProgressEvent | null = null;
  /** A terminal event of LAYRA's writer, held until its last write (or the wait for it) is over. */
  let held: { event: TaskProgressEvent; timer: NodeJS.Timeout } | null = null;
  const finish = (event: TaskProgressEvent) => {
    if (held) clearTimeout(held.timer);
    held = null;
    channel.push(event);
    channel.end();
  };
  channel.onEnd(() => held && clearTimeout(held.timer));
  const unwatch = deps.watcher.watchHash(`task:${taskId}`, (state) => {
    if (channel.isEnded) return;
    if (!state.fields) {
      if (held) return finish(held.event); // the end was already written; the key went after it
      if (!last) return; // still waiting for the key to appear
      const end = goneEnd(state);
      finish({
        ...last,
        observedAt: state.observedAt,
        resumed: false,
        end,
        endReason: `task:${taskId} ${end === "EXPIRED" ? "expired" : "was deleted"}`,
      });
      return;
    }
    notFound.clear();
    const event = sharedTaskEvent(taskId, state.fields, state);
    // The write after the terminal one: the final state if it is still terminal, else the end that was written.
    if (held) return finish(event.end ? event : held.event);
    last = event;
    if (!event.end) return channel.push(event);
    if (writtenAtOnce(state.fields)) return finish(event);
    held = { event, timer: setTimeout(() => held && finish(held.event), LAYRA_FINAL_WRITE_WAIT_MS) };
  });
  channel.onEnd(unwatch);
  return channel;
}

function compareStreamIds(a: string, b: string): number {
  const [aMs, aSeq = "0"] = a.split("-");
  const [bMs, bSeq = "0"] = b.split("-");
  const byMs = BigInt(aMs!) - BigInt(bMs!);
  if (byMs !== 0n) return byMs < 0n ? -1 : 1;
  const bySeq = BigInt(aSeq) - BigInt(bSeq);
  return bySeq === 0n ? 0 : bySeq < 0n ? -1 : 1;
}

function streamEvent(entry: StreamEntry): WorkflowStreamEvent {
  const f = entry.fields;
  return {
    id: entry.id,
    type: f.type ?? null,
    status: f.status ?? null,
    node: f.node ?? f.node_id ?? null,
    messageId: f.message_id ?? null,
    createTime: f.create_time ?? null,
    fields: f,
  };
}

/**
 * `workflowRun(taskId)`: the status hash `workflow:{taskId}` and the event stream
 * `workflow:events:{taskId}` (docs/layra-contract.md, "Redis"), read with XRANGE only, never a consumer group, so
 * LAYRA's own `workflow_group` reader loses nothing. The run's stream events decide when it ends.
 */
export function workflowRun(deps: ProgressDeps, taskId: string): AsyncIterable<WorkflowRunEvent> {
  checkId(taskId);
  const channel = new EventChannel<WorkflowRunEvent>();
  let hash: Record<string, string> = {};
  const runEvent = (observedAt: Date, resumed: boolean, event: WorkflowStreamEvent | null): WorkflowRunEvent => ({
    taskId,
    status: hash.status ?? null,
    username: hash.username ?? null,
    startTime: hash.start_time ?? null,
    endTime: hash.end_time ?? null,
    error: hash.error || null,
    observedAt,
    resumed,
    event,
    end: null,
    endReason: null,
  });
  const notFound = missingKeyTimer(channel, deps.missingKeyWaitMs, () =>
    channel.push({
      ...runEvent(new Date(), false, null),
      end: "NOT_FOUND",
      endReason: `no workflow run ${JSON.stringify(taskId)} appeared within ${deps.missingKeyWaitMs} ms`,
    }),
  );

  let owned = false;
  let lastId: string | null = null;
  const deliver = (entries: StreamEntry[]) => {
    for (const entry of entries) {
      if (channel.isEnded) return;
      if (lastId !== null && compareStreamIds(entry.id, lastId) <= 0) continue; // already sent
      lastId = entry.id;
      const event = streamEvent(entry);
      const end = event.type === "workflow" && event.status ? (RUN_TERMINAL[event.status] ?? null) : null;
      channel.push({
        ...runEvent(new Date(), false, event),
        end,
        endReason: end ? `the run's stream says ${event.status}` : null,
      });
      if (end) channel.end();
    }
  };

  const followStream = () => {
    const streamKey = `workflow:events:${taskId}`;
    let buffered: StreamEntry[] | null = [];
    // Listen first, then read the history, so nothing written in between is lost (ids deduplicate).
    channel.onEnd(
      deps.watcher.watchStream(streamKey, (entries) => (buffered ? buffered.push(...entries) : deliver(entries))),
    );
    const readHistory = () => {
      if (channel.isEnded) return;
      deps.watcher.readStream(streamKey).then(
        (history) => {
          const live = buffered ?? [];
          buffered = null;
          deliver(history);
          deliver(live);
        },
        () => setTimeout(readHistory, STREAM_RETRY_MS),
      );
    };
    readHistory();
  };

  const unwatch = deps.watcher.watchHash(`workflow:${taskId}`, (state) => {
    if (channel.isEnded) return;
    if (!state.fields) {
      if (!owned) return;
      const end = goneEnd(state);
      channel.push({
        ...runEvent(state.observedAt, false, null),
        end,
        endReason: `workflow:${taskId} ${end === "EXPIRED" ? "expired" : "was deleted"}`,
      });
      channel.end();
      return;
    }
    if (!owned) {
      // Someone else's run: stop looking and let the missing-key timer answer, as for a missing run.
      if (state.fields.username !== deps.viewer.username) return unwatch();
      owned = true;
      notFound.clear();
      hash = state.fields;
      channel.push(runEvent(state.observedAt, state.resumed, null));
      followStream();
      return;
    }
    hash = state.fields;
    channel.push(runEvent(state.observedAt, state.resumed, null));
  });
  channel.onEnd(unwatch);
  return channel;
}

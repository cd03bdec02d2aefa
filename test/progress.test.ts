// Live progress over graphql-ws and SSE against real Redis servers: LAYRA's exact write sequences
// (test/fixtures/layra-task-writer.ts) drive subscribers step by step; each step waits until every
// subscriber has the state it wrote, so the assertions are about order and content, never timing.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { once } from "node:events";
import { Redis } from "ioredis";
import WebSocket from "ws";
import type { Client } from "graphql-ws";
import { eventually, privateStack, redisClient, sharedStackEnv, startGateway, type TestGateway } from "./helpers.js";
import type { LocalStack } from "../dev/stack/stack.js";
import {
  taskId,
  uploadSteps,
  workflowSteps,
  writeAll,
  type RunState,
  type TaskState,
  type WriteStep,
} from "./fixtures/layra-task-writer.js";
import { percentOf } from "../src/resolvers/progress.js";
import { missingNotificationFlags } from "../src/stores/progress-keys.js";
import { sseSubscribe, wsClient, wsSubscribe, type Collected } from "./fixtures/subscribers.js";

const TASK = `subscription ($taskId: String!) {
  taskProgress(taskId: $taskId) { taskId status processed total percent message observedAt resumed end endReason }
}`;
const RUN = `subscription ($taskId: String!) {
  workflowRun(taskId: $taskId) { taskId status username observedAt resumed end endReason event { id type status node createTime fields } }
}`;

interface TaskEvent {
  taskId: string;
  status: string | null;
  processed: number | null;
  total: number | null;
  percent: number | null;
  message: string | null;
  observedAt: string;
  resumed: boolean;
  end: string | null;
  endReason: string | null;
}
interface RunEvent {
  taskId: string;
  status: string | null;
  username: string | null;
  observedAt: string;
  resumed: boolean;
  end: string | null;
  endReason: string | null;
  event: {
    id: string;
    type: string;
    status: string;
    node: string | null;
    createTime: string;
    fields: Record<string, string>;
  } | null;
}
type TaskData = { taskProgress: TaskEvent };
type RunData = { workflowRun: RunEvent };
type TaskSub = Collected<TaskData>;
type RunSub = Collected<RunData>;

function taskEvents(sub: TaskSub): TaskEvent[] {
  return sub.results.map((result) => {
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    return result.data!.taskProgress;
  });
}
function runEvents(sub: RunSub): RunEvent[] {
  return sub.results.map((result) => {
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    return result.data!.workflowRun;
  });
}
const stateOf = (event: TaskEvent): TaskState => ({
  status: event.status!,
  total: event.total!,
  processed: event.processed!,
  message: event.message!,
});
const runStateOf = (event: RunEvent): RunState => ({
  status: event.status!,
  event: event.event
    ? { type: event.event.type, status: event.event.status, ...(event.event.node ? { node: event.event.node } : {}) }
    : null,
});

/** Writes each step, then waits until every subscriber has received it: results `offset + i + 1`. */
async function drive<S>(steps: WriteStep<S>[], subscribers: Collected<unknown>[], offset = 0): Promise<void> {
  for (const [i, step] of steps.entries()) {
    await step.write();
    await Promise.all(subscribers.map((sub) => sub.waitFor(offset + i + 1)));
  }
}

test("the notification flags added to what Redis has, and LAYRA's percent", () => {
  assert.equal(missingNotificationFlags(""), "Khgxt");
  assert.equal(missingNotificationFlags("Khgx"), "t", "the local stack's own flags lack streams");
  assert.equal(missingNotificationFlags("KA"), "");
  assert.equal(missingNotificationFlags("EA"), "K");
  assert.deepEqual(
    [percentOf(1, 3), percentOf(2, 3), percentOf(0, 0), percentOf(3, 3), percentOf(null, 3)],
    [33.3, 66.7, 0, 100, null],
  );
});

const THREE_FILES = [{ name: "report.pdf" }, { name: "slides.pptx" }, { name: "scan.png" }];

describe("taskProgress and workflowRun on the shared stack (keyspace notifications)", () => {
  let shared: { env: Record<string, string>; close(): Promise<void> };
  let gateway: TestGateway;
  let redis: Redis;
  let alice: string;
  let bob: string;
  let aliceWs: Client;
  let aliceWs2: Client;

  before(async () => {
    shared = await sharedStackEnv();
    // Long enough that three writes of another task always land within it on a busy machine (the
    // odd-key test below relies on that), short enough to keep the NOT_FOUND tests quick.
    gateway = await startGateway(shared.env, { PROGRESS_MISSING_KEY_WAIT_MS: "5000" });
    redis = redisClient(gateway.config, "task");
    alice = await gateway.token("alice");
    bob = await gateway.token("bob");
    aliceWs = wsClient(gateway.url, alice);
    aliceWs2 = wsClient(gateway.url, alice);
  });
  after(async () => {
    await aliceWs.dispose();
    await aliceWs2.dispose();
    redis.disconnect();
    await gateway.close();
    await shared.close();
  });

  test("a 3-file upload: two graphql-ws and one SSE subscriber each get every written state in order, then COMPLETED", async () => {
    const id = taskId("alice");
    const steps = uploadSteps(redis, id, THREE_FILES);
    // Subscribed before the upload exists: the missing key is waited for.
    const subs = [
      wsSubscribe(aliceWs, TASK, { taskId: id }),
      wsSubscribe(aliceWs2, TASK, { taskId: id }),
      sseSubscribe(gateway.url, alice, TASK, { taskId: id }),
    ] as TaskSub[];
    await drive(steps, subs);
    for (const sub of subs) {
      await sub.whenEnded();
      assert.equal(sub.error, null);
      const events = taskEvents(sub);
      assert.deepEqual(
        events.map(stateOf),
        steps.map((step) => step.state),
      );
      assert.deepEqual(
        events.map((e) => e.percent),
        [0, 0, 33.3, 33.3, 66.7, 66.7, 100, 100],
      );
      assert.deepEqual(
        events.map((e) => e.end),
        [null, null, null, null, null, null, null, "COMPLETED"],
      );
      assert.ok(
        events.every(
          (e) => e.taskId === id && !e.resumed && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(e.observedAt),
        ),
      );
    }
    assert.equal(steps.at(-1)!.state.status, "completed");
  });

  test("LAYRA's process_file ends with two writes (status completed, then message): the last event carries the final message", async () => {
    // Back to back as LAYRA writes them, and with the writer held up between the two (a busy machine).
    for (const pauseMs of [0, 0, 0, 150]) {
      const id = taskId("alice");
      const key = `task:${id}`;
      await redis.hset(key, { status: "processing", total: "1", processed: "0", message: "Processing a.pdf..." });
      await redis.expire(key, 3600);
      const subs = [
        wsSubscribe(aliceWs, TASK, { taskId: id }),
        sseSubscribe(gateway.url, alice, TASK, { taskId: id }),
      ] as TaskSub[];
      await Promise.all(subs.map((sub) => sub.waitFor(1)));
      await redis.hincrby(key, "processed", 1);
      await Promise.all(subs.map((sub) => sub.waitFor(2)));
      await redis.hset(key, "status", "completed");
      if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
      await redis.hset(key, "message", "All files processed successfully");
      for (const sub of subs) {
        await sub.whenEnded();
        assert.equal(sub.error, null);
        const final = taskEvents(sub).at(-1)!;
        assert.deepEqual(
          { status: final.status, message: final.message, end: final.end },
          { status: "completed", message: "All files processed successfully", end: "COMPLETED" },
          `pause ${pauseMs} ms`,
        );
      }
    }
  });

  test("LAYRA's failure quirk: FAILED ends the stream; a later file resets processing, which a new subscriber follows until the key expires", async () => {
    const id = taskId("alice");
    const key = `task:${id}`;
    const steps = uploadSteps(redis, id, [
      { name: "a.pdf" },
      { name: "b.xyz", error: "unsupported format" },
      { name: "c.pdf" },
    ]);
    assert.deepEqual(
      steps.map((s) => s.state.status),
      ["processing", "processing", "processing", "processing", "failed", "processing", "processing"],
    );
    const early = wsSubscribe<TaskData>(aliceWs, TASK, { taskId: id });
    await drive(steps.slice(0, 5), [early]);
    await early.whenEnded();
    assert.deepEqual(
      taskEvents(early).map(stateOf),
      steps.slice(0, 5).map((s) => s.state),
    );
    assert.deepEqual(
      taskEvents(early).map((e) => e.end),
      [null, null, null, null, "FAILED"],
    );
    assert.equal(taskEvents(early).at(-1)!.message, "File processing failed: unsupported format");

    // Subscribing while the hash says failed: one snapshot, already terminal.
    const afterFailure = sseSubscribe<TaskData>(gateway.url, alice, TASK, { taskId: id });
    await afterFailure.whenEnded();
    assert.deepEqual(
      taskEvents(afterFailure).map((e) => [e.status, e.end]),
      [["failed", "FAILED"]],
    );

    await steps[5]!.write(); // c.pdf starts: status back to processing
    const late = wsSubscribe<TaskData>(aliceWs2, TASK, { taskId: id });
    await late.waitFor(1);
    await drive(steps.slice(6), [late], 1); // processed 2 of 3: completed is never reached
    await redis.pexpire(key, 50); // the hour LAYRA's EXPIRE gives runs out
    await late.whenEnded();
    const events = taskEvents(late);
    assert.deepEqual(
      events.map((e) => e.end),
      [null, null, "EXPIRED"],
    );
    assert.deepEqual(
      events.map(stateOf),
      [steps[5]!.state, steps[6]!.state, steps[6]!.state],
      "the last event carries the last known state",
    );
    assert.match(events[2]!.endReason!, /expired/);
  });

  test("subscribers of one task share one execution per event, yet each gets its own selection and variables", async () => {
    const id = taskId("alice");
    await redis.hset(`task:${id}`, { status: "processing", total: "2", processed: "0", message: "m0" });
    const PICK = `subscription ($taskId: String!, $withMessage: Boolean!) {
      taskProgress(taskId: $taskId) { processed message @include(if: $withMessage) }
    }`;
    const subs = [
      wsSubscribe(aliceWs, TASK, { taskId: id }),
      wsSubscribe(aliceWs2, TASK, { taskId: id }),
      wsSubscribe(aliceWs, PICK, { taskId: id, withMessage: true }),
      wsSubscribe(aliceWs2, PICK, { taskId: id, withMessage: false }),
      sseSubscribe(gateway.url, alice, PICK, { taskId: id, withMessage: false }),
    ];
    await Promise.all(subs.map((sub) => sub.waitFor(1)));
    const executions = async () => (await gateway.app.metrics.subscriptionExecutions.get()).values[0]?.value ?? 0;
    const executedBefore = await executions();
    await redis.hset(`task:${id}`, { processed: "1", message: "m1" });
    await Promise.all(subs.map((sub) => sub.waitFor(2)));
    assert.equal(
      (await executions()) - executedBefore,
      3,
      "the update is executed once per distinct selection and variables (5 subscribers, 3 executions)",
    );
    const seen = subs.map((sub) =>
      sub.results.slice(0, 2).map((result) => {
        assert.equal(result.errors, undefined, JSON.stringify(result.errors));
        return result.data;
      }),
    );
    const full = seen[0]!.map((data) => (data as { taskProgress: TaskEvent }).taskProgress);
    assert.deepEqual(
      full.map((event) => [event.taskId, event.processed, event.message]),
      [
        [id, 0, "m0"],
        [id, 1, "m1"],
      ],
    );
    assert.deepEqual(seen[1], seen[0]);
    const picked = (processed: number, message?: string) => ({
      taskProgress: message === undefined ? { processed } : { processed, message },
    });
    assert.deepEqual(seen[2], [picked(0, "m0"), picked(1, "m1")]);
    assert.deepEqual(seen[3], [picked(0), picked(1)]);
    assert.deepEqual(seen[4], [picked(0), picked(1)]);
    for (const sub of subs) sub.close();
  });

  test("a subscriber is sent only changes to what it selected: page counts it did not select send it nothing", async () => {
    const id = taskId("alice");
    await redis.hset(`task:${id}`, { status: "processing", total: "2", processed: "0", message: "m0" });
    const COARSE = `subscription ($taskId: String!) { taskProgress(taskId: $taskId) { processed message } }`;
    const PAGES = `subscription ($taskId: String!) { taskProgress(taskId: $taskId) { processed pagesDone } }`;
    // The root field behind a fragment spread is found too.
    const SPREAD = `subscription ($taskId: String!) { ...Progress }
      fragment Progress on Subscription { taskProgress(taskId: $taskId) { processed } }`;
    const coarse = [
      wsSubscribe(aliceWs, COARSE, { taskId: id }),
      sseSubscribe(gateway.url, alice, COARSE, { taskId: id }),
    ];
    const pages = wsSubscribe(aliceWs2, PAGES, { taskId: id });
    const spread = wsSubscribe(aliceWs2, SPREAD, { taskId: id });
    const subs = [...coarse, pages, spread];
    await Promise.all(subs.map((sub) => sub.waitFor(1)));
    // A gateway worker's page progress: two states that differ only in fields the coarse subscribers left out.
    await redis.hset(`task:${id}`, { current_file: "a.pdf", file_pages_done: "1", file_pages_total: "2" });
    await pages.waitFor(2);
    await redis.hset(`task:${id}`, { file_pages_done: "2" });
    await pages.waitFor(3);
    await redis.hset(`task:${id}`, { processed: "1", message: "m1" });
    await Promise.all([...coarse.map((sub) => sub.waitFor(2)), pages.waitFor(4), spread.waitFor(2)]);
    const data = (sub: (typeof subs)[number]) =>
      sub.results.map((result) => {
        assert.equal(result.errors, undefined, JSON.stringify(result.errors));
        return (result.data as { taskProgress: unknown }).taskProgress;
      });
    // Each stream is in order, so a repeated state would sit before the change.
    for (const sub of coarse)
      assert.deepEqual(data(sub), [
        { processed: 0, message: "m0" },
        { processed: 1, message: "m1" },
      ]);
    assert.deepEqual(data(spread), [{ processed: 0 }, { processed: 1 }]);
    assert.deepEqual(data(pages), [
      { processed: 0, pagesDone: null },
      { processed: 0, pagesDone: 1 },
      { processed: 0, pagesDone: 2 },
      { processed: 1, pagesDone: 2 },
    ]);
    for (const sub of subs) sub.close();
  });

  test("deleting the key ends the stream with a DELETED event (graphql-ws and SSE)", async () => {
    const id = taskId("alice");
    const steps = uploadSteps(redis, id, THREE_FILES);
    await writeAll(steps.slice(0, 2));
    const subs = [
      wsSubscribe(aliceWs, TASK, { taskId: id }),
      sseSubscribe(gateway.url, alice, TASK, { taskId: id }),
    ] as TaskSub[];
    await Promise.all(subs.map((sub) => sub.waitFor(1)));
    await redis.del(`task:${id}`);
    for (const sub of subs) {
      await sub.whenEnded();
      const events = taskEvents(sub);
      assert.deepEqual(
        events.map((e) => e.end),
        [null, "DELETED"],
      );
      assert.deepEqual(stateOf(events[1]!), steps[1]!.state);
    }
  });

  test("a WebSocket whose client stops reading is dropped past WS_MAX_BUFFERED_BYTES; a reading subscriber of the task misses nothing", async () => {
    const bounded = await startGateway(shared.env, { WS_MAX_BUFFERED_BYTES: "1024" });
    const reader = wsClient(bounded.url, alice);
    // By hand, so that it can stop reading (graphql-ws's client cannot).
    const stalled = new WebSocket(`${bounded.url.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws");
    const stalledMessages: { type: string; id?: string }[] = [];
    stalled.on("message", (data) => stalledMessages.push(JSON.parse(String(data))));
    // Listened for before the first await: an open that happened during one would otherwise be waited for forever.
    const stalledOpen = once(stalled, "open");
    let stalledCloseCode: number | undefined;
    stalled.once("close", (code) => (stalledCloseCode = code));
    const connections = async () => (await bounded.app.metrics.wsConnections.get()).values[0]?.value;
    try {
      const id = taskId("alice");
      await redis.hset(`task:${id}`, { status: "processing", total: "100000", processed: "0", message: "start" });
      const readerSub = wsSubscribe<TaskData>(reader, TASK, { taskId: id });
      await stalledOpen;
      stalled.send(JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${alice}` } }));
      await eventually(() => stalledMessages.length === 1, "connection_ack");
      assert.deepEqual(stalledMessages, [{ type: "connection_ack" }]);
      stalled.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: TASK, variables: { taskId: id } } }));
      await Promise.all([readerSub.waitFor(1), eventually(() => stalledMessages.length === 2, "the first state")]);
      assert.equal(await connections(), 2);
      stalled.pause();

      // Large states, each received by the reader before the next is written, until the gateway's
      // own buffer for the stalled client passes the bound (the kernel's buffers fill first).
      const filler = "x".repeat(200_000);
      let written = 0;
      while ((await connections()) === 2 && written < 1000) {
        written += 1;
        await redis.hset(`task:${id}`, { processed: String(written), message: `${written} ${filler}` });
        await readerSub.waitFor(written + 1);
      }
      assert.equal(await connections(), 1, `the stalled connection is dropped (after ${written} states)`);
      await redis.hset(`task:${id}`, { processed: String(written + 1), message: "after" });
      await readerSub.waitFor(written + 2);
      assert.deepEqual(
        taskEvents(readerSub).map((event) => event.processed),
        Array.from({ length: written + 2 }, (_, i) => i),
        "the reader got every state, in order",
      );

      // Reading again, the stalled client gets what the kernel held, then the end of a dropped connection.
      stalled.resume();
      await eventually(() => stalledCloseCode !== undefined, "the stalled client sees its connection end", 60_000);
      assert.equal(stalledCloseCode, 1006);
      const received = stalledMessages.filter((message) => message.type === "next").length;
      assert.ok(received < written + 1, `states never sent to it were dropped with it (${received} of ${written + 1})`);
    } finally {
      stalled.terminate();
      await reader.dispose();
      await bounded.close();
    }
  });

  test("a missing key and someone else's task get the same answer: one NOT_FOUND event after the wait", async () => {
    const missing = taskId("alice");
    const bobsTask = taskId("bob");
    await writeAll(uploadSteps(redis, bobsTask, THREE_FILES).slice(0, 1));
    const bobSees = wsSubscribe<TaskData>(wsClient(gateway.url, bob), TASK, { taskId: bobsTask });
    await bobSees.waitFor(1);
    assert.equal(taskEvents(bobSees)[0]!.status, "processing", "bob's task exists");
    bobSees.close();

    const subs = {
      missingWs: wsSubscribe<TaskData>(aliceWs, TASK, { taskId: missing }),
      missingSse: sseSubscribe<TaskData>(gateway.url, alice, TASK, { taskId: missing }),
      foreignWs: wsSubscribe<TaskData>(aliceWs2, TASK, { taskId: bobsTask }),
      foreignSse: sseSubscribe<TaskData>(gateway.url, alice, TASK, { taskId: bobsTask }),
    };
    const normalized: Record<string, unknown> = {};
    for (const [name, sub] of Object.entries(subs)) {
      await sub.whenEnded();
      assert.equal(sub.error, null);
      const events = taskEvents(sub);
      assert.equal(events.length, 1, name);
      const { taskId: id, observedAt: _observedAt, endReason, ...rest } = events[0]!;
      normalized[name] = { ...rest, endReason: endReason!.replace(id, "<id>") };
    }
    const expected = {
      status: null,
      processed: null,
      total: null,
      percent: null,
      message: null,
      resumed: false,
      end: "NOT_FOUND",
      endReason: 'no task "<id>" appeared within 5000 ms',
    };
    for (const name of Object.keys(subs)) assert.deepEqual(normalized[name], expected, name);
  });

  test("without a valid token the subscription fails with UNAUTHENTICATED before any event (graphql-ws and SSE)", async () => {
    const id = taskId("alice");
    await writeAll(uploadSteps(redis, id, THREE_FILES).slice(0, 1));
    const revoked = await gateway.token("alice");
    await gateway.app.stores.redis.tokens.revoke(revoked);
    const before = gateway.app.live.progress.counts();
    const clients = [wsClient(gateway.url, null), wsClient(gateway.url, "not-a-jwt"), wsClient(gateway.url, revoked)];
    const subs = [
      ...clients.map((client) => wsSubscribe(client, TASK, { taskId: id })),
      sseSubscribe(gateway.url, null, TASK, { taskId: id }),
      sseSubscribe(gateway.url, null, TASK, { taskId: id }, "Bearer not-a-jwt"),
      sseSubscribe(gateway.url, revoked, TASK, { taskId: id }),
      wsSubscribe(clients[0]!, RUN, { taskId: id }),
    ] as Collected<unknown>[];
    for (const sub of subs) {
      await sub.whenEnded();
      assert.equal(sub.results.length, 1, JSON.stringify(sub.results));
      const [result] = sub.results;
      assert.ok(!result!.data, "no data");
      assert.equal(result!.errors?.[0]?.extensions?.code, "UNAUTHENTICATED", JSON.stringify(result));
    }
    assert.deepEqual(gateway.app.live.progress.counts(), before, "nothing was watched");
    await Promise.all(clients.map(async (client) => client.dispose()));
  });

  test("workflowRun: the hash and every stream entry in order until the stream says completed; a late subscriber gets the history; no consumer group", async () => {
    const id = crypto.randomUUID();
    const steps = workflowSteps(redis, id, "alice", ["node_start", "node_code"]);
    const subs = [
      wsSubscribe(aliceWs, RUN, { taskId: id }),
      sseSubscribe(gateway.url, alice, RUN, { taskId: id }),
    ] as RunSub[];
    await drive(steps, subs);
    for (const sub of subs) {
      await sub.whenEnded();
      const events = runEvents(sub);
      assert.deepEqual(
        events.map(runStateOf),
        steps.map((step) => step.state),
      );
      assert.deepEqual(
        events.map((e) => e.end),
        [...steps.slice(1).map(() => null), "COMPLETED"],
      );
      assert.ok(events.every((e) => e.username === "alice"));
      assert.match(events.at(-1)!.event!.createTime, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+08:00$/);
      assert.deepEqual(JSON.parse(events.at(-1)!.event!.fields.result!), {
        node_start: [{ result: "node_start output" }],
        node_code: [{ result: "node_code output" }],
      });
    }
    const late = sseSubscribe<RunData>(gateway.url, alice, RUN, { taskId: id });
    await late.whenEnded();
    const replay = runEvents(late);
    const entries = steps.filter((step) => step.state.event).map((step) => step.state.event);
    assert.deepEqual(
      replay.map((e) => e.event && runStateOf(e).event),
      [null, ...entries],
    );
    assert.equal(replay[0]!.status, "completed");
    assert.equal(replay.at(-1)!.end, "COMPLETED");
    assert.deepEqual(await redis.xinfo("GROUPS", `workflow:events:${id}`), [], "read without consumer groups");

    const foreign = wsSubscribe<RunData>(wsClient(gateway.url, bob), RUN, { taskId: id });
    await foreign.whenEnded();
    assert.deepEqual(
      runEvents(foreign).map((e) => [e.status, e.username, e.event, e.end]),
      [[null, null, null, "NOT_FOUND"]],
    );
  });

  test("a key of another type (not a hash) reads as missing, not as a Redis outage", async () => {
    const runId = crypto.randomUUID();
    await redis.setex(`workflow:${runId}`, 60, JSON.stringify({ execution_status: "running" }));
    const stringTask = taskId("alice");
    await redis.set(`task:${stringTask}`, "not a hash", "EX", 60);
    const subs = [wsSubscribe(aliceWs, RUN, { taskId: runId }), wsSubscribe(aliceWs, TASK, { taskId: stringTask })];
    // Meanwhile a real task's changes still flow: the odd keys do not stall the shared reads.
    const id = taskId("alice");
    const steps = uploadSteps(redis, id, THREE_FILES);
    const normal = wsSubscribe<TaskData>(aliceWs2, TASK, { taskId: id });
    await drive(steps.slice(0, 3), [normal]);
    assert.ok(
      subs.every((sub) => !sub.ended),
      "the real task's states arrived while the odd keys were still being waited for",
    );
    normal.close();
    for (const sub of subs) {
      await sub.whenEnded();
      assert.equal(sub.results.length, 1);
      const event = Object.values(sub.results[0]!.data as Record<string, { end: string; status: string | null }>)[0]!;
      assert.deepEqual([event.status, event.end], [null, "NOT_FOUND"]);
    }
    await eventually(() => gateway.app.live.progress.counts().keys === 0, "both keys unwatched");
  });

  test("bad input: an empty id, or one that would name a neighbouring key, is BAD_USER_INPUT", async () => {
    const id = crypto.randomUUID();
    const subs = [
      wsSubscribe(aliceWs, TASK, { taskId: "" }),
      wsSubscribe(aliceWs, RUN, { taskId: `${id}:state` }),
      sseSubscribe(gateway.url, alice, RUN, { taskId: `events:${id}` }),
    ];
    for (const sub of subs) {
      await sub.whenEnded();
      assert.equal(sub.results.length, 1);
      assert.equal(sub.results[0]?.errors?.[0]?.extensions?.code, "BAD_USER_INPUT");
    }
  });

  test("after 3,000 graphql-ws and 200 SSE subscribe/disconnect cycles the listener counts are back to baseline", async () => {
    const watcher = gateway.app.live.progress;
    const baseline = watcher.counts();
    assert.equal(baseline.mode, "notifications");
    const tasks = Array.from({ length: 20 }, () => taskId("alice"));
    for (const id of tasks) await writeAll(uploadSteps(redis, id, THREE_FILES).slice(0, 2));
    let peakListeners = 0;
    const sample = () => (peakListeners = Math.max(peakListeners, watcher.counts().listeners));
    const wsCycles = 3_000;
    const batch = 100;
    for (let start = 0; start < wsCycles; start += batch) {
      const subs = Array.from({ length: batch }, (_, i) =>
        wsSubscribe(i % 2 ? aliceWs : aliceWs2, TASK, { taskId: tasks[(start + i) % tasks.length] }),
      );
      // Half leave after their first event, half at once (before the server may even have subscribed).
      subs.forEach((sub, i) => i % 2 === 0 && sub.close());
      await Promise.all(subs.filter((_, i) => i % 2 === 1).map((sub) => sub.waitFor(1)));
      sample();
      subs.forEach((sub) => sub.close());
    }
    for (let start = 0; start < 200; start += 50) {
      const subs = Array.from({ length: 50 }, (_, i) =>
        sseSubscribe(gateway.url, alice, TASK, { taskId: tasks[i % tasks.length] }),
      );
      await Promise.all(subs.map((sub) => sub.waitFor(1)));
      sample();
      subs.forEach((sub) => sub.close());
    }
    assert.ok(peakListeners >= 50, `listeners were registered (peak ${peakListeners})`);
    await eventually(
      () => {
        const now = watcher.counts();
        return now.keys === baseline.keys && now.listeners === baseline.listeners;
      },
      `counts back to ${JSON.stringify(baseline)}; now ${JSON.stringify(watcher.counts())}`,
    );
    assert.deepEqual(watcher.counts(), baseline);
  });
});

describe("on a private Redis: restart mid-stream, one listener connection, and the poller where CONFIG is forbidden", () => {
  let shared: { env: Record<string, string>; close(): Promise<void> };
  let stack: LocalStack;
  before(async () => {
    shared = await sharedStackEnv();
    stack = await privateStack(["redis"]);
  });
  after(async () => {
    await stack.close();
    await shared.close();
  });

  test("Redis restarted mid-stream: graphql-ws and SSE subscribers get the snapshot again, then the remaining changes", async () => {
    const gateway = await startGateway({ ...shared.env, REDIS_URL: stack.env.REDIS_URL });
    const redis = redisClient(gateway.config, "task");
    try {
      const alice = await gateway.token("alice");
      const client = wsClient(gateway.url, alice);
      const id = taskId("alice");
      const steps = uploadSteps(redis, id, THREE_FILES);
      await writeAll(steps.slice(0, 3));
      const others = Array.from({ length: 5 }, () => taskId("alice"));
      for (const other of others) await writeAll(uploadSteps(redis, other, THREE_FILES).slice(0, 1));
      const subs = [
        wsSubscribe(client, TASK, { taskId: id }),
        sseSubscribe(gateway.url, alice, TASK, { taskId: id }),
        ...others.map((other) => wsSubscribe(client, TASK, { taskId: other })),
      ] as TaskSub[];
      await Promise.all(subs.map((sub) => sub.waitFor(1)));
      const runId = crypto.randomUUID();
      const runSteps = workflowSteps(redis, runId, "alice", ["node_start", "node_code"]);
      const run = wsSubscribe<RunData>(client, RUN, { taskId: runId });
      await drive(runSteps.slice(0, 4), [run]);
      // One listener connection with two patterns, whatever the number of subscribers and keys.
      assert.equal(await redis.call("PUBSUB", "NUMPAT"), 2);
      assert.equal(
        String(await redis.call("CLIENT", "LIST", "TYPE", "pubsub"))
          .trim()
          .split("\n").length,
        1,
      );

      await redis.call("SAVE"); // LAYRA's Redis persists; this one reloads dump.rdb on start
      await stack.stopServer("redis");
      await stack.startServer("redis");

      const [ws, sse] = subs as [TaskSub, TaskSub];
      await Promise.all([ws.waitFor(2), sse.waitFor(2), run.waitFor(5)]);
      await drive(steps.slice(3), [ws, sse], 2);
      await drive(runSteps.slice(4), [run], 5);
      await run.whenEnded();
      const runStates = runEvents(run);
      assert.deepEqual(runStates.map(runStateOf), [
        ...runSteps.slice(0, 4).map((s) => s.state),
        { status: "running", event: null },
        ...runSteps.slice(4).map((s) => s.state),
      ]);
      assert.deepEqual(
        runStates.map((e) => e.resumed),
        runStates.map((_, i) => i === 4),
        "one resumed snapshot of the run's hash",
      );
      assert.equal(runStates.at(-1)!.end, "COMPLETED");
      for (const sub of [ws, sse]) {
        await sub.whenEnded();
        const events = taskEvents(sub);
        assert.deepEqual(events.map(stateOf), [
          steps[2]!.state,
          steps[2]!.state,
          ...steps.slice(3).map((s) => s.state),
        ]);
        assert.deepEqual(
          events.map((e) => e.resumed),
          [false, true, ...steps.slice(3).map(() => false)],
        );
        assert.equal(events.at(-1)!.end, "COMPLETED");
      }
      // The CONFIG SET did not survive the restart (the server's own flags lack `t`); the gateway set it again.
      const [, flags] = (await redis.call("CONFIG", "GET", "notify-keyspace-events")) as [string, string];
      assert.ok(flags.includes("t"), flags);
      subs.forEach((sub) => sub.close());
      await client.dispose();
    } finally {
      redis.disconnect();
      await gateway.close();
    }
  });

  test("a Redis user without CONFIG (managed Redis): auto mode falls back to one shared poller that still delivers every state, deletion and expiry", async () => {
    const admin = new Redis(stack.env.REDIS_URL);
    await admin.call("CONFIG", "SET", "notify-keyspace-events", "");
    await admin.call("ACL", "SETUSER", "gateway", "reset", "on", ">gateway-pw", "~*", "&*", "+@all", "-config");
    await admin.quit();
    const url = new URL(stack.env.REDIS_URL);
    url.username = "gateway";
    url.password = "gateway-pw";
    const gateway = await startGateway(
      { ...shared.env, REDIS_URL: url.toString() },
      { PROGRESS_POLL_INTERVAL_MS: "100" },
    );
    // The gateway's own user, to show it lacks CONFIG.
    const redis = redisClient(gateway.config, "task");
    try {
      await assert.rejects(redis.call("CONFIG", "GET", "notify-keyspace-events"), /NOPERM/);
      const alice = await gateway.token("alice");
      const client = wsClient(gateway.url, alice);
      const id = taskId("alice");
      const steps = uploadSteps(redis, id, THREE_FILES);
      const subs = [
        wsSubscribe(client, TASK, { taskId: id }),
        sseSubscribe(gateway.url, alice, TASK, { taskId: id }),
      ] as TaskSub[];
      await drive(steps, subs);
      const watcher = gateway.app.live.progress;
      for (const sub of subs) {
        await sub.whenEnded();
        assert.deepEqual(
          taskEvents(sub).map(stateOf),
          steps.map((s) => s.state),
        );
        assert.equal(taskEvents(sub).at(-1)!.end, "COMPLETED");
      }
      assert.equal(watcher.counts().mode, "poll");
      assert.equal(await redis.call("PUBSUB", "NUMPAT"), 0, "no keyspace listener in poll mode");

      const deleted = taskId("alice");
      const expiring = taskId("alice");
      await writeAll(uploadSteps(redis, deleted, THREE_FILES).slice(0, 1));
      await writeAll(uploadSteps(redis, expiring, THREE_FILES).slice(0, 1));
      const del = wsSubscribe<TaskData>(client, TASK, { taskId: deleted });
      const exp = wsSubscribe<TaskData>(client, TASK, { taskId: expiring });
      await Promise.all([del.waitFor(1), exp.waitFor(1)]);
      assert.equal(watcher.counts().pollerActive, true);
      await redis.del(`task:${deleted}`);
      await redis.pexpire(`task:${expiring}`, 600);
      await Promise.all([del.whenEnded(), exp.whenEnded()]);
      assert.deepEqual(
        taskEvents(del).map((e) => e.end),
        [null, "DELETED"],
      );
      assert.deepEqual(
        taskEvents(exp).map((e) => e.end),
        [null, "EXPIRED"],
      );
      await eventually(() => watcher.counts().keys === 0, "every key unwatched");
      assert.equal(watcher.counts().pollerActive, false, "the poller stops when nothing is watched");
      await client.dispose();
    } finally {
      redis.disconnect();
      await gateway.close();
    }
  });
});

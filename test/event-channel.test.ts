// The subscription streams' channel (src/live/event-channel.ts) and its `map`, which every layer over
// a stream uses (the token check, the shared execution, masking, the response limit). Pure: no store
// is needed, and async steps are promises the test settles itself.
import assert from "node:assert/strict";
import { test } from "node:test";
import { EventChannel, SKIP } from "../src/live/event-channel.js";

/** A value the test settles by hand. */
function held<T>() {
  let settle!: (value: T) => void;
  let fail!: (error: unknown) => void;
  const promise = new Promise<T>((resolve, reject) => ((settle = resolve), (fail = reject)));
  return { promise, settle, fail };
}

async function drain<T>(channel: AsyncIterator<T>): Promise<T[]> {
  const values: T[] = [];
  for (let step = await channel.next(); !step.done; step = await channel.next()) values.push(step.value);
  return values;
}

test("a map transforms each event when it is pushed, before anyone asks for it", async () => {
  const source = new EventChannel<number>();
  const seen: number[] = [];
  const doubled = source.map((n) => {
    seen.push(n);
    return n * 2;
  });
  source.push(1);
  source.push(2);
  assert.deepEqual(seen, [1, 2], "transformed synchronously on push");
  source.end();
  assert.deepEqual(await drain(doubled), [2, 4]);
});

test("events already queued, and an end already reached, go through a map made later", async () => {
  const source = new EventChannel<string>();
  source.push("a");
  source.push("b");
  source.end();
  assert.deepEqual(await drain(source.map((s) => s.toUpperCase())), ["A", "B"]);
});

test("an async transform holds later events back: order is kept, and the end comes last", async () => {
  const source = new EventChannel<number>();
  const slow = held<string>();
  const mapped = source.map((n) => (n === 1 ? slow.promise : `event ${n}`));
  source.push(1);
  source.push(2);
  source.push(3);
  source.end();
  const values = drain(mapped);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(mapped.isEnded, false, "the end waits behind the pending transform");
  slow.settle("event 1");
  assert.deepEqual(await values, ["event 1", "event 2", "event 3"]);
});

test("a transform that returns SKIP, at once or after a wait, leaves that event out and keeps the order", async () => {
  const source = new EventChannel<number>();
  const slow = held<number | typeof SKIP>();
  const mapped = source.map((n) => (n === 2 ? slow.promise : n % 3 === 0 ? SKIP : n));
  for (const n of [1, 2, 3, 4, 5, 6, 7]) source.push(n);
  source.end();
  const values = drain(mapped);
  slow.settle(SKIP);
  assert.deepEqual(await values, [1, 4, 5, 7]);
});

test("a failure reaches the mapped channel through onError, in order, and ends both", async () => {
  const source = new EventChannel<number>();
  const failures: unknown[] = [];
  source.onEnd((error) => failures.push(error));
  const mapped = source.map(
    (n) => n + 1,
    (error) => new Error(`wrapped: ${(error as Error).message}`),
  );
  source.push(1);
  const first = await mapped.next();
  assert.deepEqual(first, { value: 2, done: false });
  source.fail(new Error("store down"));
  await assert.rejects(mapped.next(), /wrapped: store down/);
  assert.deepEqual(await mapped.next(), { value: undefined, done: true }, "the failure is reported once");
  assert.equal((failures[0] as Error).message, "store down", "onEnd hears the error the channel failed with");
});

test("a transform that throws fails the mapped channel with its error and ends the source", async () => {
  const source = new EventChannel<number>();
  let sourceEnded = false;
  source.onEnd(() => (sourceEnded = true));
  const mapped = source.map((n) => {
    if (n === 2) throw new Error("revoked");
    return n;
  });
  source.push(1);
  assert.deepEqual(await mapped.next(), { value: 1, done: false });
  source.push(2);
  source.push(3);
  await assert.rejects(mapped.next(), /revoked/);
  assert.deepEqual(await mapped.next(), { value: undefined, done: true }, "nothing after the failure");
  assert.equal(sourceEnded, true);
  assert.equal(mapped.isEnded, true);
});

test("a rejected async transform fails the mapped channel after the events before it", async () => {
  const source = new EventChannel<number>();
  const mapped = source.map((n) => (n === 2 ? Promise.reject(new Error("check failed")) : n));
  source.push(1);
  source.push(2);
  assert.deepEqual(await mapped.next(), { value: 1, done: false });
  await assert.rejects(mapped.next(), /check failed/);
});

test("the consumer's return() on the last map ends every channel below it, with their cleanups", async () => {
  const source = new EventChannel<number>();
  const cleaned: string[] = [];
  source.onEnd(() => cleaned.push("source"));
  const middle = source.map((n) => n);
  middle.onEnd(() => cleaned.push("middle"));
  const last = middle.map((n) => n);
  const pending = last.next();
  await last.return();
  assert.deepEqual(await pending, { value: undefined, done: true }, "a pending next() completes");
  assert.deepEqual(cleaned.sort(), ["middle", "source"]);
  source.push(1);
  assert.deepEqual(await last.next(), { value: undefined, done: true }, "nothing arrives after the end");
});

test("replaceEach layers run in order on every event, queued ones too, on the same channel", async () => {
  const channel = new EventChannel<string>();
  channel.push("a");
  channel.replaceEach((s) => `${s}1`);
  channel.push("b");
  channel.replaceEach((s) => `${s}2`);
  channel.push("c");
  channel.end();
  assert.deepEqual(await drain(channel), ["a12", "b12", "c12"], "each event through every layer, first added first");
});

test("replaceEach: a failure reaches the consumer through every onError in order; onEnd hears it unreplaced", async () => {
  const channel = new EventChannel<number>();
  const heard: unknown[] = [];
  channel.onEnd((error) => heard.push(error));
  channel.replaceEach(
    (n) => n,
    (error) => new Error(`masked(${(error as Error).message})`),
  );
  channel.replaceEach(
    (n) => n,
    (error) => new Error(`limited(${(error as Error).message})`),
  );
  const delivered = channel.deliverTo(() => undefined);
  channel.fail(new Error("store down"));
  await assert.rejects(delivered, /^Error: limited\(masked\(store down\)\)$/);
  assert.equal((heard[0] as Error).message, "store down");
});

test("replaceEach: a layer that throws fails the channel through the later layers' onError only, and nothing follows", async () => {
  const source = new EventChannel<number>();
  let sourceEnded = false;
  source.onEnd(() => (sourceEnded = true));
  const channel = source.map((n) => n);
  const onErrors: string[] = [];
  channel.replaceEach(
    (n) => {
      if (n === 2) throw new Error("bug");
      return n;
    },
    (error) => (onErrors.push("first"), error),
  );
  channel.replaceEach(
    (n) => n * 10,
    (error) => (onErrors.push("second"), new Error(`second(${(error as Error).message})`)),
  );
  const values: number[] = [];
  const delivered = channel.deliverTo((n) => values.push(n));
  source.push(1);
  source.push(2);
  source.push(3);
  await assert.rejects(delivered, /second\(bug\)/);
  assert.deepEqual(values, [10]);
  assert.deepEqual(onErrors, ["second"], "the layer that threw does not replace its own error");
  assert.equal(sourceEnded, true, "the failure ends the channel below too");
});

test("replaceEach added after a failure was stored replaces it before next() reports it", async () => {
  const channel = new EventChannel<number>();
  channel.fail(new Error("gone"));
  channel.replaceEach(
    (n) => n,
    (error) => new Error(`masked(${(error as Error).message})`),
  );
  await assert.rejects(channel.next(), /masked\(gone\)/);
});

test("a channel has one consumer: it cannot be mapped twice", () => {
  const source = new EventChannel<number>();
  source.map((n) => n);
  assert.throws(() => source.map((n) => n), /already mapped/);
});

test("a pending next() of the last map is resolved by a push through every layer", async () => {
  const source = new EventChannel<number>();
  const last = source
    .map((n) => n + 1)
    .map((n) => n * 10)
    .map(String);
  const pending = last.next();
  source.push(1);
  assert.deepEqual(await pending, { value: "20", done: false });
});

test("deliverTo hands over what is queued at once, then each event as it is pushed, and resolves at the end", async () => {
  const source = new EventChannel<number>();
  source.push(1);
  const seen: number[] = [];
  const delivered = source.deliverTo((n) => seen.push(n));
  assert.deepEqual(seen, [1], "the queued event, before deliverTo returns");
  source.push(2);
  assert.deepEqual(seen, [1, 2], "a later event, inside push");
  let settled = false;
  void delivered.then(() => (settled = true));
  await Promise.resolve();
  assert.equal(settled, false, "still open");
  source.end();
  await delivered;
  source.push(3);
  assert.deepEqual(seen, [1, 2], "nothing after the end");
});

test("deliverTo rejects with the channel's failure, given before or after it was called", async () => {
  const early = new EventChannel<number>();
  early.fail(new Error("early"));
  await assert.rejects(
    early.deliverTo(() => assert.fail("no event")),
    /early/,
  );

  const late = new EventChannel<number>();
  const seen: number[] = [];
  const delivered = late.deliverTo((n) => seen.push(n));
  late.push(7);
  late.fail(new Error("late"));
  await assert.rejects(delivered, /late/);
  assert.deepEqual(seen, [7]);
});

test("deliverTo after a map keeps the map's order, and return() on the consumer ends the source", async () => {
  const source = new EventChannel<number>();
  let sourceEnded = false;
  source.onEnd(() => (sourceEnded = true));
  const slow = held<string>();
  const mapped = source.map((n) => (n === 1 ? slow.promise : `event ${n}`));
  const seen: string[] = [];
  const delivered = mapped.deliverTo((s) => seen.push(s));
  source.push(1);
  source.push(2);
  assert.deepEqual(seen, [], "event 2 waits behind event 1");
  slow.settle("event 1");
  await slow.promise;
  await Promise.resolve();
  assert.deepEqual(seen, ["event 1", "event 2"]);
  await mapped.return();
  await delivered;
  assert.ok(sourceEnded, "ending the consumer's channel ends the source");
  assert.throws(() => mapped.deliverTo(() => undefined), /one consumer/);
});

test("from: a channel is taken as it is; any other AsyncIterable is pumped into a new one", async () => {
  const channel = new EventChannel<number>();
  assert.equal(EventChannel.from(channel), channel, "the fast path adds nothing");

  async function* numbers() {
    yield 1;
    yield 2;
  }
  const wrapped = EventChannel.from(numbers());
  assert.ok(wrapped instanceof EventChannel);
  assert.deepEqual(await drain(wrapped.map((n) => n * 10)), [10, 20]);

  async function* failing() {
    yield "a";
    throw new Error("the source failed");
  }
  const failed = EventChannel.from(failing());
  assert.deepEqual(await failed.next(), { value: "a", done: false });
  await assert.rejects(failed.next(), /the source failed/);
});

test("from: ending the channel ends it at once and returns the source once its pending step settles", async () => {
  const gate = held<void>();
  let finished = false;
  async function* quiet() {
    try {
      yield "first";
      await gate.promise;
      yield "second";
    } finally {
      finished = true;
    }
  }
  const channel = EventChannel.from(quiet());
  assert.deepEqual(await channel.next(), { value: "first", done: false });
  await channel.return();
  assert.deepEqual(await channel.next(), { value: undefined, done: true }, "ended without waiting on the source");
  gate.settle();
  await gate.promise;
  for (let i = 0; i < 5 && !finished; i++) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(finished, "the generator's finally ran");
});

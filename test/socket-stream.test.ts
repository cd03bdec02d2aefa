// The direct path of subscription events to a WebSocket (src/live/socket-stream.ts): frames are
// decoded by ws's own frame parser, and the iterator graphql-ws sees is driven as graphql-ws drives
// it. The same path under real clients is covered by the progress, transports and limits tests.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createRequire } from "node:module";
import type { Writable } from "node:stream";
import type { ExecutionResult } from "graphql";
import { GraphQLError } from "graphql";
import { EventChannel } from "../src/live/event-channel.js";
import { socketStream, textFrame } from "../src/live/socket-stream.js";

// ws's frame parser, as its client uses it (its type declarations leave it out).
const Receiver = createRequire(import.meta.url)("ws").Receiver as new (options: {
  isServer: boolean;
  maxPayload: number;
}) => Writable;

/** What a WebSocket client makes of `frames`, as text messages. */
function decode(frames: Buffer[]): Promise<string[]> {
  const receiver = new Receiver({ isServer: false, maxPayload: 0 });
  const messages: string[] = [];
  receiver.on("message", (data: Buffer, isBinary: boolean) => {
    assert.equal(isBinary, false);
    messages.push(data.toString("utf8"));
  });
  return new Promise((resolve, reject) => {
    receiver.on("error", reject);
    for (const frame of frames) receiver.write(frame);
    receiver.end(() => resolve(messages));
  });
}

test("textFrame: every length form of a frame's header reads back as the same text", async () => {
  // 125 and 126 cross from the one-byte length to the 16-bit one; 65,535 and 65,536 to the 64-bit one.
  const texts = [0, 1, 125, 126, 65_535, 65_536, 200_000].map(
    (length) => "é".repeat(length >> 1) + "x".repeat(length % 2),
  );
  const frames = texts.map((text) => textFrame(Buffer.from(text.slice(0, 3)), Buffer.from(text.slice(3))));
  assert.deepEqual(await decode(frames), texts);
  assert.equal(frames[2]!.length - Buffer.byteLength(texts[2]!), 2, "125 bytes fit the header's own length");
  assert.equal(frames[3]!.length - Buffer.byteLength(texts[3]!), 4, "126 need the 16-bit length");
  assert.equal(frames[5]!.length - Buffer.byteLength(texts[5]!), 10, "65,536 need the 64-bit length");
});

test("socketStream writes each result as graphql-ws's next message, from the first next() on", async () => {
  const channel = new EventChannel<ExecutionResult>();
  const frames: Buffer[] = [];
  const shared: ExecutionResult = { data: { taskProgress: { processed: 1 } } };
  channel.push(shared);
  const iterator = socketStream(channel, "op-1", (frame) => frames.push(frame));
  assert.equal(frames.length, 0, "nothing before graphql-ws iterates (the operation may be completed already)");
  const done = iterator.next();
  channel.push({ errors: [new GraphQLError("masked")], data: null });
  assert.equal(frames.length, 2, "written when pushed");
  channel.end();
  assert.deepEqual(await done, { value: undefined, done: true });
  const messages = (await decode(frames)).map((text) => JSON.parse(text));
  assert.deepEqual(messages, [
    { id: "op-1", type: "next", payload: { data: { taskProgress: { processed: 1 } } } },
    { id: "op-1", type: "next", payload: { data: null, errors: [{ message: "masked" }] } },
  ]);
});

test("socketStream: a failure reaches graphql-ws as a rejection, and return() ends the stream", async () => {
  const failing = new EventChannel<ExecutionResult>();
  const pending = socketStream(failing, "a", () => undefined).next();
  failing.fail(new Error("revoked"));
  await assert.rejects(pending, /revoked/);

  const open = new EventChannel<ExecutionResult>();
  const iterator = socketStream(open, "b", () => assert.fail("no event after return()"));
  const next = iterator.next();
  assert.deepEqual(await iterator.return!(), { value: undefined, done: true });
  assert.deepEqual(await next, { value: undefined, done: true });
  assert.ok(open.isEnded);
  open.push({ data: {} });
});

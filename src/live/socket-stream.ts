// Subscription results written straight to the subscriber's connection as ready-made frames, each
// payload serialised once for all who share it; graphql-ws keeps the protocol and waits on one
// promise per stream (docs/performance.md, "Events go straight to the socket").
import type { ExecutionResult } from "graphql";
import type { EventChannel } from "./event-channel.js";
import { messageTail } from "./result-payload.js";

const DONE: IteratorResult<never> = { value: undefined, done: true };

/** One final, unmasked text frame (RFC 6455, 5.2) of `parts` in order: what a server sends. */
export function textFrame(...parts: Buffer[]): Buffer {
  let length = 0;
  for (const part of parts) length += part.length;
  const header = length < 126 ? 2 : length < 2 ** 16 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = 0x81; // FIN, opcode 1 (text)
  if (header === 2) frame[1] = length;
  else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  let offset = header;
  // TypedArray set, not Buffer#copy: a native copy without copy's argument checks, per delivery.
  for (const part of parts) {
    frame.set(part, offset);
    offset += part.length;
  }
  return frame;
}

/**
 * What graphql-ws iterates for subscription `id`: nothing until `stream` ends (then done) or fails
 * (then its error, which graphql-ws sends as the operation's `error` message). `write` puts one
 * whole frame on the subscriber's connection. Events are delivered only once graphql-ws starts
 * iterating, that is once the operation is registered, so one completed meanwhile writes nothing.
 */
export function socketStream(
  stream: EventChannel<ExecutionResult>,
  id: string,
  write: (frame: Buffer) => void,
): AsyncIterableIterator<never> {
  const messageStart = Buffer.from(`{"id":${JSON.stringify(id)},"type":"next","payload":`);
  const deliver = (result: ExecutionResult) => write(textFrame(messageStart, messageTail(result)));
  let delivering: Promise<IteratorResult<never>> | null = null;
  const iterator: AsyncIterableIterator<never> = {
    next: () => (delivering ??= stream.deliverTo(deliver).then(() => DONE)),
    return: async () => {
      await stream.return();
      return DONE;
    },
    throw: async (error) => {
      await stream.return();
      throw error;
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

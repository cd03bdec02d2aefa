// A subscription result object is shared by every subscriber of the same operation
// (useSharedEventResults) and by the layers that leave it unchanged, so its JSON is made once per
// object: the socket writes it (src/live/socket-stream.ts) and the repeat filter compares it.
import type { ExecutionResult } from "graphql";

/** The payload's JSON followed by the `}` that closes graphql-ws's `next` message around it. */
const messageTails = new WeakMap<ExecutionResult, Buffer>();

/**
 * The end of graphql-ws's `next` message for `result`: its payload (errors last, as graphql-ws
 * writes it) and the closing `}`, in UTF-8. Kept whole so a frame is two copies, not three.
 */
export function messageTail(result: ExecutionResult): Buffer {
  let tail = messageTails.get(result);
  if (tail === undefined) {
    const { errors, ...rest } = result;
    tail = Buffer.from(`${JSON.stringify(errors ? { ...rest, errors } : rest)}}`);
    messageTails.set(result, tail);
  }
  return tail;
}

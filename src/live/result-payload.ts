// A subscription result object is shared by every subscriber of the same operation
// (useSharedEventResults) and by the layers that leave it unchanged, so its JSON is made once per
// object: the socket writes it (src/live/socket-stream.ts) and the repeat filter compares it.
import type { ExecutionResult } from "graphql";

const payloads = new WeakMap<ExecutionResult, Buffer>();

/** The result as graphql-ws writes a `next` message's payload (its errors last), in UTF-8. */
export function resultPayload(result: ExecutionResult): Buffer {
  let payload = payloads.get(result);
  if (payload === undefined) {
    const { errors, ...rest } = result;
    payload = Buffer.from(JSON.stringify(errors ? { ...rest, errors } : rest));
    payloads.set(result, payload);
  }
  return payload;
}

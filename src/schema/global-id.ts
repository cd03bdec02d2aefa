// Opaque Relay ids: base64url of `Type:layraId`. LAYRA's own ids stay available as plain fields.
// Decoding never throws while arguments are parsed, so one bad id in `nodes(ids:)` fails its own
// item only; `loadNode` then answers BAD_USER_INPUT for an id that is malformed or names a type
// that is not a node (`User:`, `__proto__:`), and null for another user's or a missing document.
import type { Context } from "../context.js";
import { BadUserInput } from "../errors.js";
import { loadPageImage } from "../resolvers/owned-reads.js";
import { MAX_ID_LENGTH } from "../lib/layra-ids.js";

export function encodeGlobalId(typename: string, id: string | number | bigint): string {
  return Buffer.from(`${typename}:${id}`, "utf8").toString("base64url");
}

/** What a global id names; `typename` is "" when it is not a global id of this API. */
export interface DecodedGlobalId {
  typename: string;
  id: string;
  raw: string;
}

export function decodeGlobalId(globalId: string): DecodedGlobalId {
  const decoded =
    globalId.length <= MAX_ID_LENGTH * 2 && /^[A-Za-z0-9_-]+$/.test(globalId)
      ? Buffer.from(globalId, "base64url").toString("utf8")
      : "";
  const separator = decoded.indexOf(":");
  if (separator < 1 || separator === decoded.length - 1) return { typename: "", id: "", raw: globalId };
  return { typename: decoded.slice(0, separator), id: decoded.slice(separator + 1), raw: globalId };
}

const NODE_LOADERS: Readonly<Record<string, (context: Context, id: string) => Promise<unknown>>> = {
  KnowledgeBase: (context, id) => context.loaders.knowledgeBase.load(id),
  File: (context, id) => context.loaders.file.load(id),
  PageImage: loadPageImage,
  Conversation: (context, id) => context.loaders.conversation.load(id),
  Chatflow: (context, id) => context.loaders.chatflow.load(id),
  Workflow: (context, id) => context.loaders.workflow.load(id),
};

/** The caller's node a global id names, null when it is not theirs or missing; BAD_USER_INPUT when it is no node id. */
export async function loadNode(context: Context, argument: string, globalId: DecodedGlobalId): Promise<unknown> {
  const load = Object.hasOwn(NODE_LOADERS, globalId.typename) ? NODE_LOADERS[globalId.typename] : undefined;
  if (!load || globalId.id.length > MAX_ID_LENGTH)
    throw new BadUserInput(argument, `${JSON.stringify(globalId.raw)} is not a valid global id`);
  return load(context, globalId.id);
}

/** Node types are told apart by the LAYRA id fields their documents carry. */
export function hasKeys(value: unknown, ...keys: string[]): boolean {
  return typeof value === "object" && value !== null && keys.every((key) => key in value);
}

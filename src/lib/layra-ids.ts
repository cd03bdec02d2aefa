// LAYRA's id and key shapes (docs/layra-contract.md, "Ids and keys"), parsed whole: the only place ownership is read
// from an id or key, and never by a `{username}_` prefix test (docs/security.md, "Ownership").

const UUID4 = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";
const USER_ID = new RegExp(`^(.+)_(${UUID4})$`);
const TEMP_ID = new RegExp(`^temp_((.+)_${UUID4})_(${UUID4})$`);
// `{username}_{basename}_{ObjectId}{ext}`: a LAYRA username has no "_" (its registration refuses it),
// so the owner is everything before the first "_"; the basename may hold anything else.
const OBJECT_KEY = /^([^_]+)_(.*)_([0-9a-f]{24})(\.[^./\\]{1,32})?$/;

/** The longest id or key the gateway accepts anywhere (LAYRA's are far shorter). */
export const MAX_ID_LENGTH = 512;

/** Control characters, path separators, dot segments or percent escapes: never part of a LAYRA id or key. */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f/\\]|\.\.|%[0-9a-fA-F]{2}/;

export interface UserId {
  owner: string;
  uuid: string;
}

/** `{username}_{uuid4}` (knowledge bases, files, pages, tasks, conversations, chatflows, models). */
export function parseUserId(id: string): UserId | null {
  if (id.length > MAX_ID_LENGTH || UNSAFE.test(id) || parseTempKnowledgeBaseId(id)) return null;
  const match = USER_ID.exec(id);
  return match ? { owner: match[1]!, uuid: match[2]! } : null;
}

export interface TempKnowledgeBaseId {
  /** The conversation or chatflow id the base was uploaded to (`{username}_{uuid4}`). */
  parentId: string;
  owner: string;
}

/**
 * `temp_{conversationOrChatflowId}_{uuid4}` = `temp_{username}_{uuid4}_{uuid4}`. An id that also
 * reads as a normal `{username}_{uuid4}` of a user named `temp_...` is still a temp id here, and
 * parseUserId refuses it, so no id is ever both.
 */
export function parseTempKnowledgeBaseId(id: string): TempKnowledgeBaseId | null {
  if (id.length > MAX_ID_LENGTH || UNSAFE.test(id)) return null;
  const match = TEMP_ID.exec(id);
  return match ? { parentId: match[1]!, owner: match[2]! } : null;
}

/** True only when `id` is exactly `{username}_{uuid4}` and its owner is exactly `username`. */
export const isOwnUserId = (id: string, username: string) => parseUserId(id)?.owner === username;

/** The owner of an id of either shape, or null when it has neither. */
function ownerOfId(id: string): string | null {
  return parseUserId(id)?.owner ?? parseTempKnowledgeBaseId(id)?.owner ?? null;
}

/** True only when `id` parses whole and its owner is exactly `username`. */
export const isOwnId = (id: string, username: string) => ownerOfId(id) === username;

const RUN_ID = new RegExp(`^${UUID4}$`);

/** A workflow run's task id: a bare uuid4, as LAYRA's execute endpoint makes it. */
export const isWorkflowRunId = (id: string) => RUN_ID.test(id);

export interface ObjectKey {
  owner: string;
  basename: string;
  objectId: string;
  extension: string;
}

/** An S3 object key LAYRA writes: originals and page PNGs, `{username}_{basename}_{ObjectId}{ext}`. */
export function parseObjectKey(key: string): ObjectKey | null {
  if (key.length > MAX_ID_LENGTH || UNSAFE.test(key)) return null;
  const match = OBJECT_KEY.exec(key);
  return match ? { owner: match[1]!, basename: match[2]!, objectId: match[3]!, extension: match[4] ?? "" } : null;
}

/** True only when `key` has LAYRA's object-key shape and its owner is exactly `username`. */
export const isOwnObjectKey = (key: string, username: string) => parseObjectKey(key)?.owner === username;

/**
 * The object key inside a URL LAYRA stored (`{SERVER_IP}/{bucket}/{urlencoded key}?...`): exactly
 * two path segments, the bucket and one percent-decoded key that must itself parse. Nothing is
 * normalised or joined, so `%2F..%2F` or extra segments yield no key.
 */
export function objectKeyOfStoredUrl(storedUrl: string, bucket: string): string | null {
  // Dot segments or backslashes would be resolved by the URL parser: refused before it sees them.
  if (/\.\.|%2e|\\/i.test(storedUrl.split("?")[0]!)) return null;
  let pathname: string;
  try {
    pathname = new URL(storedUrl).pathname;
  } catch {
    return null;
  }
  const segments = pathname.split("/");
  if (segments.length !== 3 || segments[0] !== "" || segments[1] !== bucket) return null;
  let key: string;
  try {
    key = decodeURIComponent(segments[2]!);
  } catch {
    return null;
  }
  return parseObjectKey(key) ? key : null;
}

// The caller's lists (knowledge bases, conversations, chatflows, workflows) and single documents,
// always filtered by the caller's username. Page windows come from resolvers/pagination.ts.
import type { Context } from "../context.js";
import { NotFound } from "../errors.js";

type Loadable = "knowledgeBase" | "file" | "conversation" | "chatflow" | "workflow";

/** A root lookup by LAYRA id: another user's id answers exactly like a missing one. */
export async function ownDocument<L extends Loadable>(context: Context, loader: L, kind: string, id: string) {
  const doc = await context.loaders[loader].load(id);
  if (!doc) throw new NotFound(kind, id);
  return doc as NonNullable<Awaited<ReturnType<Context["loaders"][L]["load"]>>>;
}

export const listKnowledgeBases = (context: Context, username: string) =>
  context.stores.mongo.knowledgeBases.list(username);
export const listConversations = (context: Context, username: string) =>
  context.stores.mongo.conversations.list(username);
export const listChatflows = (context: Context, username: string) => context.stores.mongo.chatflows.list(username);
export const listWorkflows = (context: Context, username: string) => context.stores.mongo.workflows.list(username);

/**
 * The files of all the caller's knowledge bases, newest first, optionally by filename keyword
 * (LAYRA's get_user_files_with_pagination); files of temporary knowledge bases are left out.
 */
export async function listFiles(context: Context, username: string, keyword: string | null | undefined) {
  const { knowledgeBases, files } = context.stores.mongo;
  return files.list(username, await knowledgeBases.listedIds(username), keyword);
}

export const customNodesOf = (context: Context, username: string) => context.stores.mongo.customNodes.find(username);

/**
 * Presigns an object key found inside a user's own document (turn image parts, retrieved pages).
 * LAYRA names every object `{username}_...`, so a key of someone else's is never signed.
 */
export function presignOwnKey(context: Context, key: string | null): string | null {
  if (!key || !context.viewer || !key.startsWith(`${context.viewer.username}_`)) return null;
  return context.stores.s3.presignGet(key);
}

/** The object key inside a URL LAYRA stored (`{SERVER_IP}/{bucket}/{urlencoded key}?...`). */
export function keyOfStoredUrl(context: Context, storedUrl: string): string | null {
  try {
    const [bucket, ...rest] = new URL(storedUrl).pathname.split("/").filter(Boolean);
    return bucket === context.stores.s3.bucket && rest.length > 0 ? decodeURIComponent(rest.join("/")) : null;
  } catch {
    return null;
  }
}

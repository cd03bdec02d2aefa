// The caller's lists (knowledge bases, conversations, chatflows, workflows) and single documents,
// always filtered by the caller's username. Page windows come from resolvers/pagination.ts.
import type { Context } from "../context.js";
import { NotFound } from "../errors.js";
import { isOwnObjectKey, objectKeyOfStoredUrl } from "../lib/layra-ids.js";

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
 * Presigns an object key for the caller: only a key of LAYRA's full object-key shape whose owner
 * is exactly the caller is signed (src/lib/layra-ids.ts), wherever the key came from (a file
 * document, a turn's image part, a URL LAYRA stored). Anything else answers null.
 */
export function presignOwnKey(context: Context, key: string | null | undefined): string | null {
  if (!key || !context.viewer || !isOwnObjectKey(key, context.viewer.username)) return null;
  return context.stores.s3.presignGet(key);
}

/** The caller's object key inside a URL LAYRA stored, presigned afresh (see objectKeyOfStoredUrl). */
export const presignOwnStoredUrl = (context: Context, storedUrl: string | null | undefined): string | null =>
  typeof storedUrl === "string"
    ? presignOwnKey(context, objectKeyOfStoredUrl(storedUrl, context.stores.s3.bucket))
    : null;

/** A page image by its `images_id`, with the caller's file that holds it; null when not the caller's. */
export async function loadPageImage(context: Context, imageId: string) {
  const file = await context.loaders.fileByImage.load(imageId);
  const image = file?.images.find((candidate) => candidate.images_id === imageId);
  return file && image ? { image, file } : null;
}

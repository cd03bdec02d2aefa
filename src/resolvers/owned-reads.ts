// The caller's lists (knowledge bases, conversations, chatflows, workflows) and single documents,
// always filtered by the caller's username. Page windows come from src/lib/pagination.ts.
import type { Context } from "../context.js";
import { NotFound } from "../errors.js";
import { isOwnObjectKey, objectKeyOfStoredUrl } from "../lib/layra-ids.js";
import { readModelConfig } from "./model-config.js";

type Loadable = "knowledgeBase" | "file" | "conversation" | "chatflow" | "workflow";

/** A root lookup by LAYRA id: another user's id answers exactly like a missing one. */
export async function ownDocument<L extends Loadable>(context: Context, loader: L, kind: string, id: string) {
  const doc = await context.loaders[loader].load(id);
  if (!doc) throw new NotFound(kind, id);
  return doc as NonNullable<Awaited<ReturnType<Context["loaders"][L]["load"]>>>;
}

// The profile's reads go through the request's loaders (src/loaders/index.ts): tracked by its read
// schedule, so the by-id loads they lead to share batches, and priming those loaders.
export const listKnowledgeBases = (context: Context, username: string) =>
  context.loaders.lists.knowledgeBases(username);
export const listConversations = (context: Context, username: string) => context.loaders.lists.conversations(username);
export const listChatflows = (context: Context, username: string) => context.loaders.lists.chatflows(username);
export const listWorkflows = (context: Context, username: string) => context.loaders.lists.workflows(username);
/** The caller's chatflows of a workflow (the workflow was loaded as the caller's). */
export const chatflowsOfWorkflow = (context: Context, workflowId: string) =>
  context.loaders.chatflowsByWorkflow.list(workflowId);

/**
 * The files of all the caller's knowledge bases, newest first, optionally by filename keyword
 * (LAYRA's get_user_files_with_pagination); files of temporary knowledge bases are left out.
 */
export const listFiles = (context: Context, username: string, keyword: string | null | undefined) =>
  context.loaders.lists.files(username, keyword);

export const customNodesOf = (context: Context, username: string) =>
  context.loaders.reads.track(() => context.stores.mongo.customNodes.find(username));

/** The caller's model config, read as one of the profile's tracked reads. */
export const modelConfigOf = (context: Context, username: string) =>
  context.loaders.reads.track(() => readModelConfig(context, username));

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

// The caller's lists (knowledge bases, conversations, chatflows, workflows) and single documents,
// always filtered by the caller's username. Page windows come from resolvers/pagination.ts.
import type { Collection, Document, Filter, Sort, WithId } from "mongodb";
import type { Context } from "../context.js";
import { NotFound } from "../errors.js";
import type { CustomNodesDoc } from "../stores/documents.js";
import { isOwnObjectKey, objectKeyOfStoredUrl } from "../lib/layra-ids.js";

type Loadable = "knowledgeBase" | "file" | "conversation" | "chatflow" | "workflow";

/** A root lookup by LAYRA id: another user's id answers exactly like a missing one. */
export async function ownDocument<L extends Loadable>(context: Context, loader: L, kind: string, id: string) {
  const doc = await context.loaders[loader].load(id);
  if (!doc) throw new NotFound(kind, id);
  return doc as NonNullable<Awaited<ReturnType<Context["loaders"][L]["load"]>>>;
}

/** One page of the caller's documents in a collection, plus its total, in a stable order. */
function ownedList<D extends Document>(collection: Collection<D>, username: string, sort: Sort, extra: Filter<D> = {}) {
  // is_delete: false keeps temp (chat-upload) knowledge bases out; no other collection sets it.
  const filter = { ...extra, username, is_delete: false } as unknown as Filter<D>;
  return {
    count: () => collection.countDocuments(filter),
    page: (offset: number, limit: number) =>
      collection.find(filter, { skip: offset, limit, sort, projection: { _id: 0 } }).toArray() as Promise<WithId<D>[]>,
  };
}

export const listKnowledgeBases = (context: Context, username: string) =>
  ownedList(context.stores.mongo.knowledgeBases, username, { created_at: -1, knowledge_base_id: 1 });
export const listConversations = (context: Context, username: string) =>
  ownedList(context.stores.mongo.conversations, username, { last_modify_at: -1, conversation_id: 1 });
export const listChatflows = (context: Context, username: string) =>
  ownedList(context.stores.mongo.chatflows, username, { last_modify_at: -1, chatflow_id: 1 });
export const listWorkflows = (context: Context, username: string) =>
  ownedList(context.stores.mongo.workflows, username, { last_modify_at: -1, workflow_id: 1 });

/** A client's text as a regex that matches it literally (LAYRA passes the keyword raw). */
const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * The files of all the caller's knowledge bases, newest first, optionally by filename keyword
 * (LAYRA's get_user_files_with_pagination); files of temporary knowledge bases are left out.
 */
export async function listFiles(context: Context, username: string, keyword: string | null | undefined) {
  const { knowledgeBases, files } = context.stores.mongo;
  const bases = await knowledgeBases
    .find({ username, is_delete: false }, { projection: { _id: 0, knowledge_base_id: 1 } })
    .toArray();
  return ownedList(
    files,
    username,
    { created_at: -1, file_id: 1 },
    {
      knowledge_db_id: { $in: bases.map((kb) => kb.knowledge_base_id) },
      ...(keyword ? { filename: { $regex: literal(keyword), $options: "i" } } : {}),
    },
  );
}

export async function customNodesOf(context: Context, username: string): Promise<CustomNodesDoc["custom_nodes"]> {
  const doc = await context.stores.mongo.nodes.findOne({ username }, { projection: { _id: 0 } });
  return doc?.custom_nodes ?? {};
}

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

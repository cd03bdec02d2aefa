// Knowledge bases and their files (LAYRA's shapes: docs/layra-contract.md). This module owns both
// delete paths (a whole base, or some of its files) and the rules for temporary bases: how a
// conversation's temp bases are found, and which temp bases are orphans.
import { randomUUID } from "node:crypto";
import type { Context, StoreAccess } from "../context.js";
import { NotFound } from "../errors.js";
import { runCascade, type CascadeStep } from "../lib/cascade.js";
import { requireIdList, requireName } from "../lib/input.js";
import { parseTempKnowledgeBaseId } from "../lib/layra-ids.js";
import type { KnowledgeBaseDoc, TurnDoc } from "../stores/documents.js";
import { withKnowledgeBaseLocks } from "../stores/lock.js";
import { pageCodeObjectKey } from "../stores/page-code-objects.js";
import { removeBaseUsedReferences } from "./model-config.js";

/**
 * Writes a new knowledge base in LAYRA's shape: its Milvus collection (configured HNSW index) first,
 * then its document. Shared by createKnowledgeBase and the temp bases of chat uploads.
 */
export async function insertKnowledgeBase(
  context: StoreAccess,
  base: Pick<KnowledgeBaseDoc, "knowledge_base_id" | "knowledge_base_name" | "username" | "is_delete">,
): Promise<KnowledgeBaseDoc> {
  const now = new Date();
  const doc: KnowledgeBaseDoc = {
    knowledge_base_id: base.knowledge_base_id,
    knowledge_base_name: base.knowledge_base_name,
    username: base.username,
    files: [],
    used_chat: [],
    created_at: now,
    last_modify_at: now,
    is_delete: base.is_delete,
  };
  const { milvus, mongo } = context.stores;
  await milvus.createCollection(doc.knowledge_base_id);
  try {
    await mongo.knowledgeBases.insert(doc);
  } catch (error) {
    // No document names the new collection: drop it rather than leave an orphan.
    await milvus.dropCollection(doc.knowledge_base_id).catch(() => undefined);
    throw error;
  }
  return doc;
}

/** LAYRA's create_knowledge_base: a normal base `{username}_{uuid4}` of the caller. */
export function createKnowledgeBase(context: Context, username: string, name: string): Promise<KnowledgeBaseDoc> {
  return insertKnowledgeBase(context, {
    knowledge_base_id: `${username}_${randomUUID()}`,
    knowledge_base_name: requireName("name", name),
    username,
    is_delete: false,
  });
}

/** Renames one of the caller's (non-temporary, as LAYRA) knowledge bases and bumps last_modify_at. */
export async function renameKnowledgeBase(
  context: Context,
  username: string,
  knowledgeBaseId: string,
  name: string,
): Promise<KnowledgeBaseDoc> {
  const newName = requireName("name", name);
  if (!(await context.stores.mongo.knowledgeBases.rename(username, knowledgeBaseId, newName, new Date())))
    throw new NotFound("knowledge base", knowledgeBaseId);
  return (await context.loaders.knowledgeBase.clear(knowledgeBaseId).load(knowledgeBaseId))!;
}

/** The caller's files among `fileIds`, found by their `files` document or by a knowledge base's ref to them. */
async function locateFiles(context: Context, username: string, fileIds: string[]) {
  const { files, knowledgeBases } = context.stores.mongo;
  const docs = await files.findByIds(username, fileIds);
  const holders = await knowledgeBases.findHoldingFiles(username, fileIds);
  return { docs, holders };
}

/**
 * Deletes files across knowledge bases, stage by stage over all of them: Milvus rows
 * (`file_id in [...]`), S3 objects, the knowledge bases' `files[]` refs, and last the `files`
 * documents in one command. Until that last stage every file keeps its document, so a retry after
 * a failure finds every file again. Any unknown or foreign id answers NOT_FOUND before anything changes.
 */
export async function deleteFiles(context: Context, username: string, fileIds: readonly string[]): Promise<string[]> {
  const ids = requireIdList("fileIds", fileIds);
  const located = await locateFiles(context, username, ids);
  const known = new Set([
    ...located.docs.map((doc) => doc.file_id),
    ...located.holders.flatMap((kb) => kb.files.map((ref) => ref.file_id)),
  ]);
  const unknown = ids.find((id) => !known.has(id));
  if (unknown) throw new NotFound("file", unknown);
  const kbIds = [
    ...new Set([
      ...located.docs.map((doc) => doc.knowledge_db_id),
      ...located.holders.map((kb) => kb.knowledge_base_id),
    ]),
  ];

  await withKnowledgeBaseLocks(context, kbIds, async () => {
    const { mongo, milvus, s3 } = context.stores;
    // Read again under the locks: this is what the stages delete.
    const { docs, holders } = await locateFiles(context, username, ids);
    const wanted = new Set(ids);
    const refsByKb = holders.map((kb) => ({
      kbId: kb.knowledge_base_id,
      refs: kb.files.filter((ref) => wanted.has(ref.file_id)),
    }));
    const objectKeys = [
      ...docs.flatMap((doc) => [doc.minio_filename, ...doc.images.map((image) => image.minio_filename)]),
      ...refsByKb.flatMap(({ refs }) => refs.map((ref) => ref.minio_filename)),
      ...ids.map(pageCodeObjectKey),
    ];
    await runCascade(`deleting ${ids.length} file(s)`, [
      {
        name: "milvus rows",
        run: async () => {
          for (const kbId of kbIds)
            await milvus.deleteFileRows(
              kbId,
              ids,
              docs.flatMap((doc) => doc.images.map((image) => image.images_id)),
            );
        },
      },
      { name: "s3 objects", run: () => s3.removeObjects([...new Set(objectKeys.filter(Boolean))]) },
      {
        name: "knowledge base file refs",
        run: async () => {
          for (const { kbId, refs } of refsByKb) await mongo.knowledgeBases.pullFileRefs(kbId, refs);
        },
      },
      { name: "files documents", run: () => mongo.files.deleteOwnedByIds(username, ids) },
    ]);
  });
  return ids;
}

/**
 * Deletes one knowledge base of `owner` everywhere: the Milvus collection, the S3 originals and
 * page PNGs, the `files` documents, the `base_used` references to it, and last the knowledge-base
 * document (LAYRA's delete_knowledge_base plus what it leaves behind). `ifMissing: "sweep"` is for
 * temp bases named by a conversation: with no document left, whatever else remains is still removed.
 * Returns whether a knowledge-base document was deleted.
 */
export function deleteKnowledgeBase(
  context: StoreAccess,
  owner: string,
  knowledgeBaseId: string,
  ifMissing: "not-found" | "sweep" = "not-found",
): Promise<boolean> {
  const { mongo, milvus, s3 } = context.stores;
  return withKnowledgeBaseLocks(context, [knowledgeBaseId], async () => {
    const kb = await mongo.knowledgeBases.findOwned(owner, knowledgeBaseId);
    if (!kb && ifMissing === "not-found") throw new NotFound("knowledge base", knowledgeBaseId);
    const files = await mongo.files.findByKnowledgeBase(knowledgeBaseId, owner);
    const objectKeys = [
      ...files.flatMap((file) => [file.minio_filename, ...file.images.map((image) => image.minio_filename)]),
      // A ref whose files document is gone (or not yet written) still names its original.
      ...(kb?.files ?? []).map((ref) => ref.minio_filename),
      ...[...files, ...(kb?.files ?? [])].map((file) => pageCodeObjectKey(file.file_id)),
    ];
    await runCascade(`deleting knowledge base ${JSON.stringify(knowledgeBaseId)}`, [
      { name: "milvus collection", run: () => milvus.dropCollection(knowledgeBaseId) },
      { name: "s3 objects", run: () => s3.removeObjects([...new Set(objectKeys.filter(Boolean))]) },
      {
        name: "files documents",
        run: () => mongo.files.deleteByKnowledgeBase(knowledgeBaseId, owner),
      },
      { name: "base_used references", run: () => removeBaseUsedReferences(context, knowledgeBaseId) },
      {
        name: "knowledge base document",
        run: () => mongo.knowledgeBases.deleteOwned(owner, knowledgeBaseId),
      },
    ]);
    mongo.settledFiles.forget(knowledgeBaseId);
    return kb !== null;
  });
}

/**
 * The temp knowledge bases a conversation's or chatflow's turns name (`temp_db`). A base counts
 * only when its id carries the conversation's own prefix (`temp_{conversationId}_`, as LAYRA names
 * them) or it is a temp base (`is_delete: true`) of `owner`. LAYRA's chat endpoint takes `temp_db`
 * from the client, so a turn may name a normal knowledge base or someone else's: those are left alone.
 */
async function tempKnowledgeBasesOf(
  context: StoreAccess,
  owner: string,
  parentId: string,
  turns: Pick<TurnDoc, "temp_db">[],
) {
  const named = [
    ...new Set(turns.map((turn) => turn.temp_db).filter((id): id is string => typeof id === "string" && id !== "")),
  ];
  if (named.length === 0) return [];
  const ownedIds = new Set(await context.stores.mongo.knowledgeBases.ownedTempIds(owner, named));
  return named.filter((id) => ownedIds.has(id) || parseTempKnowledgeBaseId(id)?.parentId === parentId);
}

/** The cascade steps that delete a conversation's or chatflow's temp knowledge bases. */
export async function tempKnowledgeBaseSteps(
  context: StoreAccess,
  owner: string,
  parentId: string,
  turns: Pick<TurnDoc, "temp_db">[],
): Promise<CascadeStep[]> {
  return (await tempKnowledgeBasesOf(context, owner, parentId, turns)).map((id) => ({
    name: `temporary knowledge base ${id}`,
    run: () => deleteKnowledgeBase(context, owner, id, "sweep"),
  }));
}

/** Deletes the orphaned temp bases of `username`, or of every user when it is null. Returns the deleted ids. */
export async function cleanupOrphanedTempKnowledgeBases(
  context: StoreAccess,
  username: string | null,
): Promise<string[]> {
  const { knowledgeBases, conversations, chatflows } = context.stores.mongo;
  const temps = await knowledgeBases.tempBases(username);
  // Only ids that parse whole, as a temp base of the document's own user, are candidates: an
  // ambiguous or foreign-looking id is never deleted (LAYRA's split("_") parse misreads `ann_x`'s).
  const parsed = temps.flatMap((kb) => {
    const id = parseTempKnowledgeBaseId(kb.knowledge_base_id);
    return id && id.owner === kb.username ? [{ ...kb, parentId: id.parentId }] : [];
  });
  const parents = [...new Set(parsed.map((kb) => kb.parentId))];
  const [liveConversations, liveChatflows] = await Promise.all([
    conversations.owners(parents),
    chatflows.owners(parents),
  ]);
  // A parent counts only for its own user, as LAYRA looks only among the user's own documents.
  const live = new Set([
    ...liveConversations.map((c) => `${c.username}\n${c.conversation_id}`),
    ...liveChatflows.map((c) => `${c.username}\n${c.chatflow_id}`),
  ]);
  const orphans = parsed.filter((kb) => !live.has(`${kb.username}\n${kb.parentId}`));
  await runCascade(
    "cleaning up orphaned temporary knowledge bases",
    orphans.map((kb) => ({
      name: `temporary knowledge base ${kb.knowledge_base_id}`,
      run: () => deleteKnowledgeBase(context, kb.username, kb.knowledge_base_id, "sweep"),
    })),
  );
  return orphans.map((kb) => kb.knowledge_base_id);
}

// Knowledge-base and file writes with LAYRA's document shapes (contract §1.5, §1.6).
import { randomUUID } from "node:crypto";
import type { Context } from "../context.js";
import { NotFound } from "../errors.js";
import type { KnowledgeBaseDoc } from "../stores/documents.js";
import { deleteKnowledgeBaseCascade, runCascade, withLocks } from "./cascade.js";
import { requireIdList, requireName } from "./input.js";

/** LAYRA's create_knowledge_base document, after its Milvus collection (configured HNSW index) exists. */
export async function createKnowledgeBase(context: Context, username: string, name: string): Promise<KnowledgeBaseDoc> {
  const now = new Date();
  const doc: KnowledgeBaseDoc = {
    knowledge_base_id: `${username}_${randomUUID()}`,
    knowledge_base_name: requireName("name", name),
    username,
    files: [],
    used_chat: [],
    created_at: now,
    last_modify_at: now,
    is_delete: false,
  };
  const { milvus, mongo } = context.stores;
  await milvus.createCollection(doc.knowledge_base_id);
  try {
    await mongo.knowledgeBases.insertOne({ ...doc });
  } catch (error) {
    // No document names the new collection: drop it rather than leave an orphan.
    await milvus.dropCollection(doc.knowledge_base_id).catch(() => undefined);
    throw error;
  }
  return doc;
}

/** Renames one of the caller's (non-temporary, as LAYRA) knowledge bases and bumps last_modify_at. */
export async function renameKnowledgeBase(context: Context, username: string, knowledgeBaseId: string, name: string): Promise<KnowledgeBaseDoc> {
  const newName = requireName("name", name);
  const result = await context.stores.mongo.knowledgeBases.updateOne(
    { knowledge_base_id: knowledgeBaseId, username, is_delete: false },
    { $set: { knowledge_base_name: newName, last_modify_at: new Date() } },
  );
  if (result.matchedCount === 0) throw new NotFound("knowledge base", knowledgeBaseId);
  return (await context.loaders.knowledgeBase.clear(knowledgeBaseId).load(knowledgeBaseId))!;
}

export async function deleteKnowledgeBase(context: Context, username: string, knowledgeBaseId: string): Promise<string> {
  await deleteKnowledgeBaseCascade(context, username, knowledgeBaseId);
  return knowledgeBaseId;
}

/** The caller's files among `fileIds`, found by their `files` document or by a knowledge base's ref to them. */
async function locateFiles(context: Context, username: string, fileIds: string[]) {
  const { files, knowledgeBases } = context.stores.mongo;
  const docs = await files.find({ file_id: { $in: fileIds }, username }, { projection: { _id: 0 } }).toArray();
  const holders = await knowledgeBases.find({ username, "files.file_id": { $in: fileIds } }, { projection: { _id: 0 } }).toArray();
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
  const known = new Set([...located.docs.map((doc) => doc.file_id), ...located.holders.flatMap((kb) => kb.files.map((ref) => ref.file_id))]);
  const unknown = ids.find((id) => !known.has(id));
  if (unknown) throw new NotFound("file", unknown);
  const kbIds = [...new Set([...located.docs.map((doc) => doc.knowledge_db_id), ...located.holders.map((kb) => kb.knowledge_base_id)])];

  await withLocks(context, "knowledge_base", kbIds, async () => {
    const { mongo, milvus, s3 } = context.stores;
    // Read again under the locks: this is what the stages delete.
    const { docs, holders } = await locateFiles(context, username, ids);
    const wanted = new Set(ids);
    const refsByKb = holders.map((kb) => ({ kbId: kb.knowledge_base_id, refs: kb.files.filter((ref) => wanted.has(ref.file_id)) }));
    const objectKeys = [
      ...docs.flatMap((doc) => [doc.minio_filename, ...doc.images.map((image) => image.minio_filename)]),
      ...refsByKb.flatMap(({ refs }) => refs.map((ref) => ref.minio_filename)),
    ];
    await runCascade(`deleting ${ids.length} file(s)`, [
      { name: "milvus rows", run: async () => { for (const kbId of kbIds) await milvus.deleteFileRows(kbId, ids); } },
      { name: "s3 objects", run: () => s3.removeObjects([...new Set(objectKeys.filter(Boolean))]) },
      {
        name: "knowledge base file refs",
        // Exact elements as read: a conditional $pull matches but removes nothing on FerretDB.
        run: async () => { for (const { kbId, refs } of refsByKb) await mongo.knowledgeBases.updateOne({ knowledge_base_id: kbId }, { $pullAll: { files: refs } }); },
      },
      { name: "files documents", run: () => mongo.files.deleteMany({ file_id: { $in: ids }, username }) },
    ]);
  });
  return ids;
}

// `files`: one document per uploaded file, with its page images (`images[]`).
import type { Collection } from "mongodb";
import type { FileDoc } from "../documents.js";
import { NO_ID, ownedCollection, type UntilConnected } from "./collection.js";

/** A client's text as a regex that matches it literally (LAYRA passes the keyword raw). */
const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The list's order: newest first, ties by id (a total order, so pages never overlap). */
const LIST_ORDER = { created_at: -1, file_id: 1 } as const;

export function fileRepository(collection: Collection<FileDoc>, untilConnected: UntilConnected) {
  const owned = ownedCollection(collection, "file_id", {}, untilConnected);
  const { call } = owned;
  return {
    findByIds: owned.findByIds,
    /** The caller's files holding any of these page images (`images[].images_id`). */
    findByImageIds: (username: string, imageIds: readonly string[]) =>
      call("findByImageIds", () =>
        collection.find({ "images.images_id": { $in: [...imageIds] }, username }, { projection: NO_ID }).toArray(),
      ),
    /** The caller's files of these knowledge bases, newest first, optionally by literal filename keyword. */
    list: (username: string, knowledgeBaseIds: readonly string[], keyword: string | null | undefined) =>
      owned.list(username, LIST_ORDER, {
        knowledge_db_id: { $in: [...knowledgeBaseIds] },
        ...(keyword ? { filename: { $regex: literal(keyword), $options: "i" } } : {}),
      }),
    /**
     * The first `limit` of `list(username, knowledgeBaseIds)` (no keyword) and the caller's files
     * among `ids`, in one command (see `firstPageWithIds` in ./collection.ts).
     */
    firstPageWithIds: (
      username: string,
      knowledgeBaseIds: readonly string[],
      limit: number,
      ids: readonly string[],
    ) => {
      const listed = new Set(knowledgeBaseIds);
      const filter = { knowledge_db_id: { $in: [...knowledgeBaseIds] }, is_delete: false };
      const has = (file: FileDoc) => file.is_delete === false && listed.has(file.knowledge_db_id);
      return owned.firstPageWithIds(username, { filter, sort: LIST_ORDER, has }, limit, ids);
    },
    /** A knowledge base's files: `owner`'s, or any user's for operators' tools when it is left out. */
    findByKnowledgeBase: (knowledgeBaseId: string, owner?: string) =>
      call("findByKnowledgeBase", () =>
        collection
          .find(
            { knowledge_db_id: knowledgeBaseId, ...(owner === undefined ? {} : { username: owner }) },
            {
              projection: NO_ID,
            },
          )
          .toArray(),
      ),
    deleteOwnedByIds: (username: string, fileIds: string[]) =>
      call("deleteByIds", () => collection.deleteMany({ file_id: { $in: fileIds }, username })),
    deleteByKnowledgeBase: (knowledgeBaseId: string, owner: string) =>
      call("deleteByKnowledgeBase", () => collection.deleteMany({ knowledge_db_id: knowledgeBaseId, username: owner })),
    /** Which of these file ids have a document, whoever owns it. */
    existingIds: (fileIds: readonly string[]) =>
      call("existingIds", () =>
        collection.find({ file_id: { $in: [...fileIds] } }, { projection: { _id: 0, file_id: 1 } }).toArray(),
      ).then((docs) => docs.map((doc) => doc.file_id)),
    exists: (fileId: string) =>
      call("exists", () => collection.countDocuments({ file_id: fileId }, { limit: 1 })).then((count) => count > 0),
    insert: (doc: FileDoc) => call("insert", () => collection.insertOne({ ...doc })).then(() => undefined),
    /** Deletes a file document by id alone (undoing the insert of an ingestion attempt that failed). */
    deleteById: (fileId: string) =>
      call("deleteById", () => collection.deleteOne({ file_id: fileId })).then(() => undefined),
    insertMany: (docs: FileDoc[]) =>
      call("insertMany", () => collection.insertMany(docs.map((doc) => ({ ...doc })))).then(() => undefined),
  };
}

export type FileRepository = ReturnType<typeof fileRepository>;

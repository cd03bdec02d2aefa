// `knowledge_bases`: LAYRA's knowledge-base documents, temp (chat-upload) ones included (`is_delete: true`).
import type { Collection } from "mongodb";
import type { FileRef, KnowledgeBaseDoc } from "../documents.js";
import { NO_ID, ownedCollection, pullExact, type UntilConnected } from "./collection.js";

/** The list's order: newest first, ties by id (a total order, so pages never overlap). */
const LIST_ORDER = { created_at: -1, knowledge_base_id: 1 } as const;

export function knowledgeBaseRepository(collection: Collection<KnowledgeBaseDoc>, untilConnected: UntilConnected) {
  const owned = ownedCollection(collection, "knowledge_base_id", {}, untilConnected);
  const { call } = owned;
  const ids = (docs: Pick<KnowledgeBaseDoc, "knowledge_base_id">[]) => docs.map((kb) => kb.knowledge_base_id);
  return {
    findByIds: owned.findByIds,
    deleteOwned: owned.deleteOwned,
    /** The caller's knowledge bases, newest first, temp ones left out. */
    list: (username: string) => owned.list(username, LIST_ORDER),
    /** The first page of `list(username)` and the caller's bases among `ids`, temp ones too, in one command. */
    firstPageWithIds: (username: string, limit: number, ids: readonly string[]) =>
      owned.firstPageWithIds(
        username,
        { filter: { is_delete: false }, sort: LIST_ORDER, has: (kb) => kb.is_delete === false },
        limit,
        ids,
      ),
    /** The ids of the caller's knowledge bases that are not temporary. */
    listedIds: (username: string) =>
      call("listedIds", () =>
        collection.find({ username, is_delete: false }, { projection: { _id: 0, knowledge_base_id: 1 } }).toArray(),
      ).then(ids),
    findOwned: (username: string, knowledgeBaseId: string) =>
      call("findOwned", () =>
        collection.findOne({ knowledge_base_id: knowledgeBaseId, username }, { projection: NO_ID }),
      ),
    /** Any user's knowledge base, for operators' tools (backup and restore). */
    findById: (knowledgeBaseId: string) =>
      call("findById", () => collection.findOne({ knowledge_base_id: knowledgeBaseId }, { projection: NO_ID })),
    /** Any user's knowledge base without its file refs, for ingestion (which checks the owner itself). */
    findSummary: (knowledgeBaseId: string) =>
      call("findSummary", () =>
        collection.findOne({ knowledge_base_id: knowledgeBaseId }, { projection: { _id: 0, files: 0 } }),
      ) as Promise<Omit<KnowledgeBaseDoc, "files"> | null>,
    /** Deletes a knowledge-base document by id alone (undoing a temp base this request just created). */
    deleteById: (knowledgeBaseId: string) =>
      call("deleteById", () => collection.deleteOne({ knowledge_base_id: knowledgeBaseId })).then(() => undefined),
    /**
     * Pushes a file's ref unless the base has it already (a redelivered file), bumping last_modify_at
     * as LAYRA's knowledge_base_add_file does. False when the base is gone. A guarded
     * read-modify-write (the caller holds the file's lock): `$ne` on an array path is not in the
     * portable subset FerretDB runs.
     */
    pushFileRef: async (knowledgeBaseId: string, ref: FileRef) => {
      const holder = await call("findFileIds", () =>
        collection.findOne({ knowledge_base_id: knowledgeBaseId }, { projection: { _id: 0, "files.file_id": 1 } }),
      );
      if (!holder) return false;
      if (holder.files.some((existing) => existing.file_id === ref.file_id)) return true;
      const pushed = await call("pushFileRef", () =>
        collection.updateOne(
          { knowledge_base_id: knowledgeBaseId },
          { $push: { files: ref }, $set: { last_modify_at: new Date() } },
        ),
      );
      return pushed.matchedCount > 0;
    },
    /** Every knowledge-base id, for operators' store statistics. */
    allIds: () =>
      call("allIds", () => collection.find({}, { projection: { _id: 0, knowledge_base_id: 1 } }).toArray()).then(ids),
    insert: (doc: KnowledgeBaseDoc) => call("insert", () => collection.insertOne({ ...doc })).then(() => undefined),
    /** Renames one of the caller's non-temporary knowledge bases (as LAYRA); false when there is none. */
    rename: (username: string, knowledgeBaseId: string, name: string, at: Date) =>
      owned.update("rename", username, knowledgeBaseId, { knowledge_base_name: name, last_modify_at: at }),
    /** The caller's knowledge bases whose `files[]` refs name any of `fileIds`. */
    findHoldingFiles: (username: string, fileIds: string[]) =>
      call("findHoldingFiles", () =>
        collection.find({ username, "files.file_id": { $in: fileIds } }, { projection: NO_ID }).toArray(),
      ),
    /** Removes these `files[]` refs, exactly as read. */
    pullFileRefs: (knowledgeBaseId: string, refs: FileRef[]) =>
      pullExact(call, "pullFileRefs", collection, { knowledge_base_id: knowledgeBaseId }, "files", refs),
    /** Which of `knowledgeBaseIds` are temp knowledge bases of `owner`. */
    ownedTempIds: (owner: string, knowledgeBaseIds: string[]) =>
      call("ownedTempIds", () =>
        collection
          .find(
            { knowledge_base_id: { $in: knowledgeBaseIds }, username: owner, is_delete: true },
            { projection: { _id: 0, knowledge_base_id: 1 } },
          )
          .toArray(),
      ).then(ids),
    /** How many temp knowledge bases (`temp_...`) `username` has, counting no further than `atMost`. */
    countTemp: (username: string, atMost: number) =>
      call("countTemp", () =>
        collection.countDocuments({ username, knowledge_base_id: { $regex: "^temp_" } }, { limit: atMost }),
      ),
    /** Every temp knowledge base (`temp_...`) of `username`, or of every user when it is null. */
    tempBases: (username: string | null) =>
      call("tempBases", () =>
        collection
          .find(
            { ...(username === null ? {} : { username }), knowledge_base_id: { $regex: "^temp_" } },
            { projection: { _id: 0, knowledge_base_id: 1, username: 1 } },
          )
          .toArray(),
      ),
  };
}

export type KnowledgeBaseRepository = ReturnType<typeof knowledgeBaseRepository>;

// `chatflows`: chats run through a workflow, with their turns.
import type { Collection } from "mongodb";
import type { ChatflowDoc } from "../documents.js";
import { NO_ID, insertUnique, ownedCollection, type UntilConnected } from "./collection.js";

/** The list's order: most recently changed first, ties by id (a total order, so pages never overlap). */
const LIST_ORDER = { last_modify_at: -1, chatflow_id: 1 } as const;

export function chatflowRepository(collection: Collection<ChatflowDoc>, untilConnected: UntilConnected) {
  const live = { is_delete: false } as const;
  const owned = ownedCollection(collection, "chatflow_id", live, untilConnected);
  const { call } = owned;
  return {
    findByIds: owned.findByIds,
    deleteOwned: owned.deleteOwned,
    owners: owned.owners,
    /** The caller's chatflows, most recently changed first. */
    list: (username: string) => owned.list(username, LIST_ORDER),
    /**
     * The first `limit` of the caller's chatflows of these workflows together, in list order (so
     * each workflow's share is the start of its own list). One batch past the most that can come
     * back, so never a getMore.
     */
    firstOfWorkflows: (username: string, workflowIds: readonly string[], limit: number) =>
      call("firstOfWorkflows", () =>
        collection
          .find(
            { ...live, workflow_id: { $in: [...workflowIds] }, username },
            { sort: LIST_ORDER, limit, batchSize: limit + 1, projection: NO_ID },
          )
          .toArray(),
      ),
    /** The `limit` of the caller's chatflows of one workflow after its first `offset`, in list order. */
    pageOfWorkflow: (username: string, workflowId: string, offset: number, limit: number) =>
      call("pageOfWorkflow", () =>
        collection
          .find(
            { ...live, workflow_id: workflowId, username },
            { sort: LIST_ORDER, skip: offset, limit, batchSize: limit + 1, projection: NO_ID },
          )
          .toArray(),
      ),
    /** How many chatflows of each of these workflows the caller has (workflows with none are left out). */
    countByWorkflow: (username: string, workflowIds: readonly string[]) =>
      call("countByWorkflow", () =>
        collection
          .aggregate<{ _id: string; count: number }>([
            { $match: { ...live, workflow_id: { $in: [...workflowIds] }, username } },
            { $group: { _id: "$workflow_id", count: { $sum: 1 } } },
          ])
          .toArray(),
      ).then((counts) => new Map(counts.map(({ _id, count }) => [_id, count]))),
    /** The ids of the caller's chatflows of one workflow. */
    idsOfWorkflow: (username: string, workflowId: string) =>
      call("idsOfWorkflow", () =>
        collection.find({ workflow_id: workflowId, username }, { projection: { _id: 0, chatflow_id: 1 } }).toArray(),
      ).then((docs) => docs.map((doc) => doc.chatflow_id)),
    /** False when the id is taken. */
    insert: (doc: ChatflowDoc) => insertUnique(call, collection, doc),
    rename: (username: string, chatflowId: string, name: string, at: Date) =>
      owned.update("rename", username, chatflowId, { chatflow_name: name, last_modify_at: at }),
    findTurns: (username: string, chatflowId: string) => owned.findFields("findTurns", username, chatflowId, ["turns"]),
  };
}

export type ChatflowRepository = ReturnType<typeof chatflowRepository>;

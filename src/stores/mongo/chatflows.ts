// `chatflows`: chats run through a workflow, with their turns.
import type { Collection } from "mongodb";
import type { ChatflowDoc } from "../documents.js";
import { NO_ID, insertUnique, ownedCollection } from "./collection.js";

export function chatflowRepository(collection: Collection<ChatflowDoc>) {
  const live = { is_delete: false } as const;
  const owned = ownedCollection(collection, "chatflow_id", live);
  const { call } = owned;
  return {
    findByIds: owned.findByIds,
    deleteOwned: owned.deleteOwned,
    owners: owned.owners,
    /** The caller's chatflows, most recently changed first. */
    list: (username: string) => owned.list(username, { last_modify_at: -1, chatflow_id: 1 }),
    /** The caller's chatflows of these workflows, most recently changed first. */
    findByWorkflowIds: (username: string, workflowIds: readonly string[]) =>
      call("findByWorkflowIds", () =>
        collection
          .find(
            { ...live, workflow_id: { $in: [...workflowIds] }, username },
            { sort: { last_modify_at: -1, chatflow_id: 1 }, projection: NO_ID },
          )
          .toArray(),
      ),
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

// `workflows`: the workflow editor's saved state.
import type { Collection } from "mongodb";
import type { WorkflowDoc } from "../documents.js";
import { ownedCollection, type UntilConnected } from "./collection.js";

export type WorkflowState = Omit<WorkflowDoc, "_id" | "workflow_id" | "username" | "created_at">;

export function workflowRepository(collection: Collection<WorkflowDoc>, untilConnected: UntilConnected) {
  const owned = ownedCollection(collection, "workflow_id", { is_delete: false }, untilConnected);
  const { call } = owned;
  return {
    findByIds: owned.findByIds,
    deleteOwned: owned.deleteOwned,
    /** The caller's workflows, most recently changed first. */
    list: (username: string) => owned.list(username, { last_modify_at: -1, workflow_id: 1 }),
    /**
     * LAYRA's update_workflow: an upsert keyed by `{workflow_id, username}` that `$set`s the editor
     * state and only `$setOnInsert`s `created_at`.
     */
    save: (username: string, workflowId: string, state: WorkflowState, createdAt: Date) =>
      call("save", () =>
        collection.updateOne(
          { workflow_id: workflowId, username },
          { $set: state, $setOnInsert: { created_at: createdAt } },
          { upsert: true },
        ),
      ).then(() => undefined),
    rename: (username: string, workflowId: string, name: string, at: Date) =>
      owned.update("rename", username, workflowId, { workflow_name: name, last_modify_at: at }),
    /** Whether the caller has this workflow, listed or not (LAYRA's delete has no is_delete filter). */
    exists: (username: string, workflowId: string) =>
      owned.findFields("exists", username, workflowId, ["workflow_id"]).then((doc) => doc !== null),
  };
}

export type WorkflowRepository = ReturnType<typeof workflowRepository>;

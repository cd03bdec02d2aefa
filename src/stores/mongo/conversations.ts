// `conversations`: chats with their turns and the model-settings snapshot taken at creation.
import type { Collection } from "mongodb";
import type { BaseUsed, ConversationDoc, TurnDoc } from "../documents.js";
import { insertUnique, ownedCollection, pullExact, type UntilConnected } from "./collection.js";

export function conversationRepository(collection: Collection<ConversationDoc>, untilConnected: UntilConnected) {
  const owned = ownedCollection(collection, "conversation_id", { is_delete: false }, untilConnected);
  const { call } = owned;
  return {
    findByIds: owned.findByIds,
    deleteOwned: owned.deleteOwned,
    owners: owned.owners,
    /** The caller's conversations, most recently changed first. */
    list: (username: string) => owned.list(username, { last_modify_at: -1, conversation_id: 1 }),
    /** False when the id is taken. */
    insert: (doc: ConversationDoc) => insertUnique(call, collection, doc),
    update: (username: string, conversationId: string, set: Partial<ConversationDoc>) =>
      owned.update("update", username, conversationId, set),
    /** LAYRA's add_turn: `$push` the turn and bump last_modify_at to its timestamp. */
    pushTurn: (username: string, conversationId: string, turn: TurnDoc) =>
      call("pushTurn", () =>
        collection.updateOne(
          { conversation_id: conversationId, username, is_delete: false },
          { $push: { turns: turn }, $set: { last_modify_at: turn.timestamp } },
        ),
      ).then((result) => result.matchedCount === 1),
    findTurns: (username: string, conversationId: string) =>
      owned.findFields("findTurns", username, conversationId, ["turns"]),
    /** The ids of every conversation of the caller. */
    idsOf: (username: string) =>
      call("idsOf", () => collection.find({ username }, { projection: { _id: 0, conversation_id: 1 } }).toArray()).then(
        (docs) => docs.map((doc) => doc.conversation_id),
      ),
    /** The conversations whose model-settings snapshot names this knowledge base in `base_used`. */
    findBaseUsedSnapshots: (knowledgeBaseId: string) =>
      call("findBaseUsedSnapshots", () =>
        collection
          .find(
            { "model_config.base_used.baseId": knowledgeBaseId },
            { projection: { _id: 0, conversation_id: 1, "model_config.base_used": 1 } },
          )
          .toArray(),
      ),
    /** Removes these `model_config.base_used` entries, exactly as read. */
    pullBaseUsed: (conversationId: string, refs: BaseUsed[]) =>
      pullExact(call, "pullBaseUsed", collection, { conversation_id: conversationId }, "model_config.base_used", refs),
  };
}

export type ConversationRepository = ReturnType<typeof conversationRepository>;

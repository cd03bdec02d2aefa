// Temp knowledge-base garbage collection (contract §8.2): a temp base `temp_{parentId}_{uuid4}`
// whose parent conversation or chatflow no longer exists is deleted with the full cascade.
import type { Context, StoreAccess } from "../context.js";
import { Forbidden } from "../errors.js";
import { deleteKnowledgeBaseCascade, runCascade } from "./cascade.js";

/** Operations on every user's data are for the usernames listed in OPERATOR_USERNAMES. */
export function requireOperator(context: Context, what: string): void {
  if (!context.viewer || !context.config.operatorUsernames.has(context.viewer.username)) {
    throw new Forbidden(`${what} needs an operator username (OPERATOR_USERNAMES)`);
  }
}

/** LAYRA's `"_".join(id[5:].split("_")[0:2])`: the conversation or chatflow id inside a temp base id. */
export const parentOfTempKnowledgeBase = (knowledgeBaseId: string) => knowledgeBaseId.slice(5).split("_").slice(0, 2).join("_");

/** Deletes the orphaned temp bases of `username`, or of every user when it is null. Returns the deleted ids. */
export async function cleanupOrphanedTempKnowledgeBases(context: StoreAccess, username: string | null): Promise<string[]> {
  const { knowledgeBases, conversations, chatflows } = context.stores.mongo;
  const scope = username === null ? {} : { username };
  const temps = await knowledgeBases
    .find({ ...scope, knowledge_base_id: { $regex: "^temp_" } }, { projection: { knowledge_base_id: 1, username: 1 } })
    .toArray();
  const parents = [...new Set(temps.map((kb) => parentOfTempKnowledgeBase(kb.knowledge_base_id)))];
  const [liveConversations, liveChatflows] = await Promise.all([
    conversations.find({ conversation_id: { $in: parents } }, { projection: { conversation_id: 1, username: 1 } }).toArray(),
    chatflows.find({ chatflow_id: { $in: parents } }, { projection: { chatflow_id: 1, username: 1 } }).toArray(),
  ]);
  // A parent counts only for its own user, as LAYRA looks only among the user's own documents.
  const live = new Set([
    ...liveConversations.map((c) => `${c.username}\n${c.conversation_id}`),
    ...liveChatflows.map((c) => `${c.username}\n${c.chatflow_id}`),
  ]);
  const orphans = temps.filter((kb) => !live.has(`${kb.username}\n${parentOfTempKnowledgeBase(kb.knowledge_base_id)}`));
  await runCascade("cleaning up orphaned temporary knowledge bases", orphans.map((kb) => ({
    name: `temporary knowledge base ${kb.knowledge_base_id}`,
    run: () => deleteKnowledgeBaseCascade(context, kb.username, kb.knowledge_base_id, "sweep"),
  })));
  return orphans.map((kb) => kb.knowledge_base_id);
}

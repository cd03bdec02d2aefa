// Temp knowledge-base garbage collection (contract §8.2): a temp base `temp_{parentId}_{uuid4}`
// whose parent conversation or chatflow no longer exists is deleted with the full cascade.
import type { Context } from "../context.js";
import { Forbidden } from "../errors.js";
import { deleteKnowledgeBaseCascade, runCascade } from "./cascade.js";

/** LAYRA's `"_".join(id[5:].split("_")[0:2])`: the conversation or chatflow id inside a temp base id. */
export const parentOfTempKnowledgeBase = (knowledgeBaseId: string) => knowledgeBaseId.slice(5).split("_").slice(0, 2).join("_");

/**
 * Deletes the orphaned temp bases of the caller, or of every user when `allUsers` is set, which
 * only a username listed in OPERATOR_USERNAMES may ask for. Returns the deleted ids.
 */
export async function cleanupOrphanedTempKnowledgeBases(context: Context, allUsers: boolean): Promise<string[]> {
  const caller = context.viewer!.username;
  if (allUsers && !context.config.operatorUsernames.has(caller)) throw new Forbidden("allUsers needs an operator username (OPERATOR_USERNAMES)");
  const { knowledgeBases, conversations, chatflows } = context.stores.mongo;
  const scope = allUsers ? {} : { username: caller };
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

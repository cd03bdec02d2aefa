// Conversation and chatflow writes (shapes in docs/layra-contract.md). Deletes cascade to the temp knowledge
// bases their turns name (`temp_db`), then remove the document itself, last, so a retry after a
// failure still finds the turns that name what is left.
import { randomUUID } from "node:crypto";
import { GraphQLError } from "graphql";
import type { Context, StoreAccess } from "../context.js";
import { withKnowledgeBaseLocks } from "../stores/lock.js";
import { BadUserInput, CascadeIncomplete, Conflict, LimitExceeded, NotFound } from "../errors.js";
import type { ChatflowDoc, ConversationDoc, FileUsed, TurnDoc } from "../stores/documents.js";
import { runCascade } from "../lib/cascade.js";
import { tempKnowledgeBaseSteps } from "./knowledge-bases.js";
import { requireListLength, requireName, requireOwnLayraId } from "../lib/input.js";
import { isOwnObjectKey, objectKeyOfStoredUrl, parseTempKnowledgeBaseId } from "../lib/layra-ids.js";
import { ownDocument } from "./owned-reads.js";
import {
  DEFAULT_SETTINGS,
  readModelConfig,
  settingsFrom,
  withBaseUsedLocked,
  type ModelSettingsInput,
} from "./model-config.js";

/** The caller's selected model as a conversation snapshot (no model_id), or LAYRA's defaults. */
async function selectedSettings(context: Context, username: string) {
  const config = await readModelConfig(context, username);
  const selected = config?.models.find((model) => model.model_id === config.selected_model);
  if (!selected) return { ...DEFAULT_SETTINGS };
  const { model_id: _modelId, ...settings } = selected;
  return settings;
}

export async function createConversation(
  context: Context,
  username: string,
  input: { conversationId?: string | null; name: string; modelSettings?: ModelSettingsInput | null },
): Promise<ConversationDoc> {
  const conversationId =
    input.conversationId == null
      ? `${username}_${randomUUID()}`
      : requireOwnLayraId("conversationId", input.conversationId, username);
  const name = requireName("name", input.name);
  const base = await selectedSettings(context, username);
  const settings = input.modelSettings ? await settingsFrom(context, input.modelSettings, base) : base;
  return withBaseUsedLocked(context, username, settings, async (modelConfig) => {
    const now = new Date();
    const doc: ConversationDoc = {
      conversation_id: conversationId,
      conversation_name: name,
      username,
      model_config: modelConfig,
      turns: [],
      created_at: now,
      last_modify_at: now,
      is_read: false,
      is_delete: false,
    };
    if (!(await context.stores.mongo.conversations.insert(doc)))
      throw new Conflict(`conversation ${JSON.stringify(conversationId)} already exists`);
    return doc;
  });
}

/** `$set` on one of the caller's conversations with last_modify_at bumped, as LAYRA's updates do. */
async function updateConversation(
  context: Context,
  username: string,
  conversationId: string,
  set: Partial<ConversationDoc>,
): Promise<ConversationDoc> {
  if (
    !(await context.stores.mongo.conversations.update(username, conversationId, { ...set, last_modify_at: new Date() }))
  )
    throw new NotFound("conversation", conversationId);
  return (await context.loaders.conversation.clear(conversationId).load(conversationId))!;
}

export const renameConversation = (context: Context, username: string, conversationId: string, name: string) =>
  updateConversation(context, username, conversationId, { conversation_name: requireName("name", name) });

/** Replaces the conversation's model-settings snapshot; fields left out keep their current value. */
export async function updateConversationModelSettings(
  context: Context,
  username: string,
  conversationId: string,
  input: ModelSettingsInput,
) {
  const current = await ownDocument(context, "conversation", "conversation", conversationId);
  const settings = await settingsFrom(context, input, current.model_config);
  return withBaseUsedLocked(context, username, settings, (modelConfig) =>
    updateConversation(context, username, conversationId, { model_config: modelConfig }),
  );
}

export interface TurnInput {
  parentMessageId?: string | null;
  userMessage: string;
  imageKeys?: string[] | null;
  tempDb?: string | null;
  aiMessage: string;
  fileUsed?: { score: number; knowledgeDbId: string; fileName: string; imageUrl: string; fileUrl: string }[] | null;
  status?: string | null;
  totalToken?: number | null;
  completionTokens?: number | null;
  promptTokens?: number | null;
}

const MAX_MESSAGE = 1_048_576;
/** Page images and retrieved pages per turn: LAYRA's chat sends its top-K pages, a handful. */
const MAX_TURN_PAGES = 50;

/** LAYRA's add_turn: a turn `$push`ed with a server uuid4 message_id, and last_modify_at bumped. */
export async function addTurn(
  context: Context,
  username: string,
  conversationId: string,
  input: TurnInput,
): Promise<TurnDoc> {
  const conversation = await ownDocument(context, "conversation", "conversation", conversationId);
  const { parent, tempDb } = turnPlace(conversation, input.parentMessageId, input.tempDb);
  if (input.userMessage.length > MAX_MESSAGE || input.aiMessage.length > MAX_MESSAGE)
    throw new BadUserInput("input", `messages must be at most ${MAX_MESSAGE} characters`);
  const imageKeys = requireListLength("imageKeys", input.imageKeys ?? [], MAX_TURN_PAGES);
  if (imageKeys.some((key) => !isOwnObjectKey(key, username)))
    throw new BadUserInput(
      "imageKeys",
      "must be object keys of the caller's page images ({username}_{name}_{ObjectId}.png)",
    );
  const bucket = context.stores.s3.bucket;
  const usedPages = requireListLength("fileUsed", input.fileUsed ?? [], MAX_TURN_PAGES);
  for (const used of usedPages) {
    for (const url of [used.imageUrl, used.fileUrl]) {
      const key = objectKeyOfStoredUrl(url, bucket);
      if (key === null || !isOwnObjectKey(key, username))
        throw new BadUserInput("fileUsed", `must be URLs of the caller's objects in bucket ${JSON.stringify(bucket)}`);
    }
    if (!Number.isFinite(used.score)) throw new BadUserInput("fileUsed", "scores must be finite numbers");
  }
  const status = input.status ?? "completed";
  if (!["completed", "aborted", ""].includes(status))
    throw new BadUserInput("status", 'must be completed, aborted or ""');
  const counts = [input.totalToken ?? 0, input.completionTokens ?? 0, input.promptTokens ?? 0];
  if (counts.some((count) => count < 0)) throw new BadUserInput("input", "token counts must not be negative");
  const fileUsed: FileUsed[] = usedPages.map((used) => ({
    score: used.score,
    knowledge_db_id: used.knowledgeDbId,
    file_name: used.fileName,
    image_url: used.imageUrl,
    file_url: used.fileUrl,
  }));
  const turn: TurnDoc = {
    message_id: randomUUID(),
    parent_message_id: parent,
    user_message: {
      role: "user",
      content: [
        ...imageKeys.map((key) => ({ type: "image_url" as const, image_url: key })),
        { type: "text", text: input.userMessage },
      ],
    },
    temp_db: tempDb,
    ai_message: { role: "assistant", content: input.aiMessage },
    file_used: fileUsed,
    status,
    timestamp: new Date(),
    total_token: counts[0]!,
    completion_tokens: counts[1]!,
    prompt_tokens: counts[2]!,
  };
  if (!(await saveTurn(context, username, conversationId, turn))) throw new NotFound("conversation", conversationId);
  return turn;
}

/**
 * LIMIT_EXCEEDED when the caller already has CHAT_UPLOAD_MAX_TEMP_BASES temp knowledge bases: a chat
 * upload names its session freely (a new one has no document yet), so only a count bounds them.
 */
export async function requireTempBaseRoom(context: Context, username: string): Promise<void> {
  const max = context.config.upload.maxTempBases;
  const count = await context.stores.mongo.knowledgeBases.countTemp(username, max);
  if (count < max) return;
  const error = new LimitExceeded("temporary knowledge bases", count + 1, max);
  throw new GraphQLError(
    `${error.message}; delete conversations (their chat uploads go with them) or run cleanupOrphanedTempKnowledgeBases`,
    { extensions: error.extensions },
  );
}

/** Where a new turn of `conversation` goes: its parent ("" for a root) and temp knowledge base ("" for none), checked. */
export function turnPlace(
  conversation: ConversationDoc,
  parentMessageId: string | null | undefined,
  tempDb: string | null | undefined,
): { parent: string; tempDb: string } {
  const parent = parentMessageId ?? "";
  if (parent !== "" && !conversation.turns.some((turn) => turn.message_id === parent))
    throw new BadUserInput("parentMessageId", 'must be "" or a message of this conversation');
  const temp = tempDb ?? "";
  // LAYRA names a conversation's temp bases `temp_{conversationId}_{uuid4}`; the delete cascade relies on it.
  if (temp !== "" && parseTempKnowledgeBaseId(temp)?.parentId !== conversation.conversation_id)
    throw new BadUserInput(
      "tempDb",
      `must be "" or a temp knowledge base of this conversation (temp_${conversation.conversation_id}_...)`,
    );
  return { parent, tempDb: temp };
}

/**
 * LAYRA's add_turn, holding the lock of the temp knowledge base the turn names (CONFLICT while a cascade
 * deletes it), as every write that adds a reference to a knowledge base does. False when the conversation
 * is gone (deleted meanwhile): no turn is written.
 */
export const saveTurn = (access: StoreAccess, username: string, conversationId: string, turn: TurnDoc) =>
  withKnowledgeBaseLocks(access, turn.temp_db ? [turn.temp_db] : [], () =>
    access.stores.mongo.conversations.pushTurn(username, conversationId, turn),
  );

/** Deletes one conversation (or chatflow) document after its temp knowledge bases. */
async function deleteWithTempBases(
  context: Context,
  owner: string,
  kind: "conversation" | "chatflow",
  doc: Pick<ConversationDoc | ChatflowDoc, "turns"> & { id: string },
  deleteDocument: () => Promise<unknown>,
): Promise<void> {
  await runCascade(`deleting ${kind} ${JSON.stringify(doc.id)}`, [
    ...(await tempKnowledgeBaseSteps(context, owner, doc.id, doc.turns)),
    { name: `${kind} document`, run: deleteDocument },
  ]);
}

export async function deleteConversation(context: Context, username: string, conversationId: string): Promise<string> {
  const { conversations } = context.stores.mongo;
  // LAYRA's delete has no is_delete filter; neither does this one.
  const doc = await conversations.findTurns(username, conversationId);
  if (!doc) throw new NotFound("conversation", conversationId);
  await deleteWithTempBases(context, username, "conversation", { id: conversationId, turns: doc.turns }, () =>
    conversations.deleteOwned(username, conversationId),
  );
  return conversationId;
}

/** Deletes every one of the caller's conversations; one that fails is reported, the others are still deleted. */
export async function deleteAllConversations(context: Context, username: string): Promise<number> {
  const ids = await context.stores.mongo.conversations.idsOf(username);
  let deleted = 0;
  const left: string[] = [];
  for (const conversation_id of ids) {
    try {
      await deleteConversation(context, username, conversation_id);
      deleted++;
    } catch (error) {
      // Deleted meanwhile by another request: nothing is left of it.
      if (error instanceof NotFound) continue;
      if (!(error instanceof CascadeIncomplete) && !(error instanceof Conflict)) throw error;
      left.push(
        ...(error instanceof CascadeIncomplete
          ? error.remaining.map((r) => `${conversation_id}: ${r}`)
          : [`${conversation_id}: locked`]),
      );
    }
  }
  if (left.length > 0)
    throw new CascadeIncomplete(
      `deleting all conversations (${deleted} of ${ids.length} deleted)`,
      left,
      "some conversations could not be deleted completely",
    );
  return deleted;
}

/** LAYRA's create_chatflow is idempotent: an existing chatflow of the caller is answered unchanged. */
export async function createChatflow(
  context: Context,
  username: string,
  input: { chatflowId?: string | null; workflowId: string; name: string },
): Promise<ChatflowDoc> {
  const chatflowId =
    input.chatflowId == null
      ? `${username}_${randomUUID()}`
      : requireOwnLayraId("chatflowId", input.chatflowId, username);
  const name = requireName("name", input.name);
  const existing = await context.loaders.chatflow.load(chatflowId);
  if (existing) return existing;
  await ownDocument(context, "workflow", "workflow", input.workflowId);
  const now = new Date();
  const doc: ChatflowDoc = {
    chatflow_id: chatflowId,
    workflow_id: input.workflowId,
    chatflow_name: name,
    username,
    turns: [],
    created_at: now,
    last_modify_at: now,
    is_read: false,
    is_delete: false,
  };
  if (await context.stores.mongo.chatflows.insert(doc)) return doc;
  // Created by a concurrent request: answer that one, as LAYRA would.
  const created = await context.loaders.chatflow.clear(chatflowId).load(chatflowId);
  if (!created) throw new Conflict(`chatflow ${JSON.stringify(chatflowId)} already exists`);
  return created;
}

export async function renameChatflow(
  context: Context,
  username: string,
  chatflowId: string,
  name: string,
): Promise<ChatflowDoc> {
  if (!(await context.stores.mongo.chatflows.rename(username, chatflowId, requireName("name", name), new Date())))
    throw new NotFound("chatflow", chatflowId);
  return (await context.loaders.chatflow.clear(chatflowId).load(chatflowId))!;
}

export async function deleteChatflow(context: Context, username: string, chatflowId: string): Promise<string> {
  const { chatflows } = context.stores.mongo;
  const doc = await chatflows.findTurns(username, chatflowId);
  if (!doc) throw new NotFound("chatflow", chatflowId);
  await deleteWithTempBases(context, username, "chatflow", { id: chatflowId, turns: doc.turns }, () =>
    chatflows.deleteOwned(username, chatflowId),
  );
  return chatflowId;
}

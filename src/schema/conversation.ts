import type { ChatflowDoc, ConversationDoc } from "../stores/documents.js";
import { arrayConnection } from "../lib/pagination.js";
import { builder } from "./builder.js";
import { hasKeys } from "./global-id.js";
import { ConversationModelSettings } from "./model-config.js";
import { Turn } from "./turn.js";
import { Workflow } from "./workflow.js";

export const Conversation = builder.objectRef<ConversationDoc>("Conversation");
export const Chatflow = builder.objectRef<ChatflowDoc>("Chatflow");

/** What conversations and chatflows share: a tree of turns (documents are always read whole). */
const ChatSession = builder.interfaceRef<ConversationDoc | ChatflowDoc>("ChatSession").implement({
  fields: (t) => ({
    isRead: t.exposeBoolean("is_read"),
    createdAt: t.expose("created_at", { type: "DateTime" }),
    lastModifiedAt: t.expose("last_modify_at", { type: "DateTime" }),
    turns: t.connection({ type: Turn, resolve: (chat, args) => arrayConnection(args, chat.turns, (window) => window) }),
  }),
});

builder.node(Conversation, {
  description: "A RAG chat with its own snapshot of model settings.",
  interfaces: [ChatSession],
  id: { resolve: (c) => c.conversation_id },
  isTypeOf: (value) => hasKeys(value, "conversation_id"),
  loadMany: (ids, context) => ids.map((id) => context.loaders.conversation.load(id)),
  fields: (t) => ({
    conversationId: t.exposeString("conversation_id"),
    name: t.exposeString("conversation_name"),
    modelSettings: t.field({
      type: ConversationModelSettings,
      nullable: true,
      description: "Null when the stored snapshot is not an object.",
      resolve: (c) =>
        typeof c.model_config === "object" && c.model_config !== null && !Array.isArray(c.model_config)
          ? c.model_config
          : null,
    }),
  }),
});

builder.node(Chatflow, {
  description: "The chat transcript of one workflow's runs.",
  interfaces: [ChatSession],
  id: { resolve: (c) => c.chatflow_id },
  isTypeOf: (value) => hasKeys(value, "chatflow_id"),
  loadMany: (ids, context) => ids.map((id) => context.loaders.chatflow.load(id)),
  fields: (t) => ({
    chatflowId: t.exposeString("chatflow_id"),
    workflowId: t.exposeString("workflow_id"),
    name: t.exposeString("chatflow_name"),
    workflow: t.field({
      type: Workflow,
      nullable: true,
      resolve: (c, _args, context) => context.loaders.workflow.load(c.workflow_id),
    }),
  }),
});

import { queryConnection } from "../lib/pagination.js";
import {
  customNodesOf,
  listChatflows,
  listFiles,
  listConversations,
  listKnowledgeBases,
  listWorkflows,
  ownDocument,
} from "../domain/user-graph.js";
import { readModelConfig } from "../domain/model-config.js";
import { builder } from "./builder.js";
import { Chatflow, Conversation } from "./conversation.js";
import { File } from "./file.js";
import { KnowledgeBase } from "./knowledge-base.js";
import { ModelConfig } from "./model-config.js";
import { Workflow } from "./workflow.js";

interface ViewerShape {
  username: string;
}

interface CustomNodeShape {
  name: string;
  definition: Record<string, unknown>;
}

export const CustomNode = builder.objectRef<CustomNodeShape>("CustomNode").implement({
  description: "A workflow node the user saved for reuse.",
  fields: (t) => ({
    name: t.exposeString("name"),
    definition: t.expose("definition", { type: "JSON" }),
  }),
});

/** A paged list of the caller's documents: one find and one count, whatever the page holds. */
const ownedConnection = <D>(
  list: { count: () => Promise<number>; page: (offset: number, limit: number) => Promise<D[]> },
  args: Parameters<typeof queryConnection>[0],
) => list.count().then((total) => queryConnection(args, total, list.page));

const User = builder.objectRef<ViewerShape>("User").implement({
  description: "The caller and everything they own.",
  fields: (t) => ({
    username: t.exposeString("username"),
    modelConfig: t.field({
      type: ModelConfig,
      nullable: true,
      resolve: (user, _args, context) => readModelConfig(context, user.username),
    }),
    customNodes: t.field({
      type: [CustomNode],
      resolve: async (user, _args, context) =>
        Object.entries(await customNodesOf(context, user.username)).map(([name, definition]) => ({ name, definition })),
    }),
    knowledgeBases: t.connection({
      type: KnowledgeBase,
      description: "The caller's knowledge bases, newest first; temporary (chat-upload) ones are left out.",
      resolve: (user, args, context) => ownedConnection(listKnowledgeBases(context, user.username), args),
    }),
    files: t.connection({
      type: File,
      description: "The files of all the caller's knowledge bases, newest first (temporary ones left out).",
      args: {
        keyword: t.arg.string({
          required: false,
          description: "Case-insensitive filename substring, matched literally.",
        }),
      },
      resolve: (user, args, context) =>
        listFiles(context, user.username, args.keyword).then((list) => ownedConnection(list, args)),
    }),
    conversations: t.connection({
      type: Conversation,
      resolve: (user, args, context) => ownedConnection(listConversations(context, user.username), args),
    }),
    chatflows: t.connection({
      type: Chatflow,
      resolve: (user, args, context) => ownedConnection(listChatflows(context, user.username), args),
    }),
    workflows: t.connection({
      type: Workflow,
      resolve: (user, args, context) => ownedConnection(listWorkflows(context, user.username), args),
    }),
  }),
});

builder.queryFields((fields) => {
  const t = fields.withAuth({ loggedIn: true });
  return {
    me: t.field({
      type: User,
      resolve: (_root, _args, context) => ({ username: context.viewer.username }),
    }),
    knowledgeBase: t.field({
      type: KnowledgeBase,
      description: "One of the caller's knowledge bases (temporary ones included) by LAYRA id.",
      args: { knowledgeBaseId: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => ownDocument(context, "knowledgeBase", "knowledge base", args.knowledgeBaseId),
    }),
    file: t.field({
      type: File,
      args: { fileId: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => ownDocument(context, "file", "file", args.fileId),
    }),
    conversation: t.field({
      type: Conversation,
      args: { conversationId: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => ownDocument(context, "conversation", "conversation", args.conversationId),
    }),
    chatflow: t.field({
      type: Chatflow,
      args: { chatflowId: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => ownDocument(context, "chatflow", "chatflow", args.chatflowId),
    }),
    workflow: t.field({
      type: Workflow,
      args: { workflowId: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => ownDocument(context, "workflow", "workflow", args.workflowId),
    }),
  };
});

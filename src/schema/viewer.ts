import {
  customNodesOf,
  listChatflows,
  listFiles,
  listConversations,
  listKnowledgeBases,
  listWorkflows,
  modelConfigOf,
  ownDocument,
} from "../resolvers/owned-reads.js";
import { builder } from "./builder.js";
import { listSize } from "./lists.js";
import { capList, listConnection } from "../lib/pagination.js";

const MAX_CUSTOM_NODES = 200;
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

// Every field that needs a store is nullable, so a store that is down fails that field only (up to
// the root fields, which are all nullable): `{ health { ready } me { username } }` keeps what it can.
const User = builder.objectRef<ViewerShape>("User").implement({
  description: "The caller and everything they own.",
  fields: (t) => ({
    username: t.exposeString("username"),
    modelConfig: t.field({
      type: ModelConfig,
      nullable: true,
      resolve: (user, _args, context) => modelConfigOf(context, user.username),
    }),
    customNodes: t.field({
      type: [CustomNode],
      nullable: true,
      description: `At most ${MAX_CUSTOM_NODES} nodes.`,
      ...listSize(MAX_CUSTOM_NODES),
      resolve: async (user, _args, context) =>
        capList(Object.entries(await customNodesOf(context, user.username)), MAX_CUSTOM_NODES).map(
          ([name, definition]) => ({ name, definition }),
        ),
    }),
    knowledgeBases: t.connection({
      type: KnowledgeBase,
      nullable: true,
      description: "The caller's knowledge bases, newest first; temporary (chat-upload) ones are left out.",
      resolve: (user, args, context) => listConnection(args, listKnowledgeBases(context, user.username)),
    }),
    files: t.connection({
      type: File,
      nullable: true,
      description: "The files of all the caller's knowledge bases, newest first (temporary ones left out).",
      args: {
        keyword: t.arg.string({
          required: false,
          description: "Case-insensitive filename substring, matched literally.",
        }),
      },
      resolve: (user, args, context) =>
        listFiles(context, user.username, args.keyword).then((list) => listConnection(args, list)),
    }),
    conversations: t.connection({
      type: Conversation,
      nullable: true,
      resolve: (user, args, context) => listConnection(args, listConversations(context, user.username)),
    }),
    chatflows: t.connection({
      type: Chatflow,
      nullable: true,
      resolve: (user, args, context) => listConnection(args, listChatflows(context, user.username)),
    }),
    workflows: t.connection({
      type: Workflow,
      nullable: true,
      resolve: (user, args, context) => listConnection(args, listWorkflows(context, user.username)),
    }),
  }),
});

builder.queryFields((fields) => {
  const t = fields.withAuth({ loggedIn: true });
  return {
    me: t.field({
      nullable: true,
      type: User,
      resolve: (_root, _args, context) => ({ username: context.viewer.username }),
    }),
    knowledgeBase: t.field({
      nullable: true,
      type: KnowledgeBase,
      description: "One of the caller's knowledge bases (temporary ones included) by LAYRA id.",
      args: { knowledgeBaseId: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => ownDocument(context, "knowledgeBase", "knowledge base", args.knowledgeBaseId),
    }),
    file: t.field({
      nullable: true,
      type: File,
      args: { fileId: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => ownDocument(context, "file", "file", args.fileId),
    }),
    conversation: t.field({
      nullable: true,
      type: Conversation,
      args: { conversationId: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => ownDocument(context, "conversation", "conversation", args.conversationId),
    }),
    chatflow: t.field({
      nullable: true,
      type: Chatflow,
      args: { chatflowId: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => ownDocument(context, "chatflow", "chatflow", args.chatflowId),
    }),
    workflow: t.field({
      nullable: true,
      type: Workflow,
      args: { workflowId: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => ownDocument(context, "workflow", "workflow", args.workflowId),
    }),
  };
});

import type { Context } from "../context.js";
import type { FileUsed, TurnDoc, UserContentPart } from "../stores/documents.js";
import { presignOwnKey, presignOwnStoredUrl } from "../resolvers/owned-reads.js";
import { builder } from "./builder.js";
import { sliceArgs } from "./lists.js";
import { sliceList } from "../lib/pagination.js";
import { KnowledgeBase } from "./knowledge-base.js";
import { File } from "./file.js";

const MessagePart = builder.objectRef<UserContentPart>("MessagePart").implement({
  description: "A part of a user message: text, or a retrieved page image named by its object key.",
  fields: (t) => ({
    type: t.exposeString("type"),
    text: t.string({ nullable: true, resolve: (part) => (part.type === "text" ? part.text : null) }),
    imageUrl: t.string({
      nullable: true,
      description: "A fresh presigned URL of the page image (LAYRA stores the object key).",
      resolve: (part, _args, context) => (part.type === "image_url" ? presignOwnKey(context, part.image_url) : null),
    }),
  }),
});

export const RetrievedPage = builder.objectRef<FileUsed>("RetrievedPage").implement({
  description: "A page retrieved for a turn (`file_used`), with its MaxSim score.",
  fields: (t) => ({
    score: t.exposeFloat("score"),
    knowledgeBaseId: t.exposeString("knowledge_db_id"),
    fileName: t.exposeString("file_name"),
    imageUrl: t.string({
      nullable: true,
      resolve: (page, _args, context) => presignOwnStoredUrl(context, page.image_url),
    }),
    fileUrl: t.string({
      nullable: true,
      resolve: (page, _args, context) => presignOwnStoredUrl(context, page.file_url),
    }),
  }),
});

function userParts(turn: TurnDoc): UserContentPart[] {
  const content = turn.user_message?.content;
  return typeof content === "string" ? [{ type: "text", text: content }] : (content ?? []);
}

async function tempKnowledgeBase(turn: TurnDoc, context: Context) {
  return turn.temp_db ? context.loaders.knowledgeBase.load(turn.temp_db) : null;
}

export const Turn = builder.objectRef<TurnDoc>("Turn").implement({
  description: "One question and answer; turns form a tree through parentMessageId.",
  fields: (t) => ({
    messageId: t.exposeString("message_id"),
    parentMessageId: t.string({ nullable: true, resolve: (turn) => turn.parent_message_id || null }),
    userText: t.string({
      description: "The text parts of the user message, joined.",
      resolve: (turn) =>
        userParts(turn)
          .flatMap((part) => (part.type === "text" ? [part.text] : []))
          .join("\n"),
    }),
    userMessageParts: t.field({
      type: [MessagePart],
      args: sliceArgs(t.arg),
      resolve: (turn, args) => sliceList(args, userParts(turn)),
    }),
    aiMessage: t.string({ resolve: (turn) => turn.ai_message?.content ?? "" }),
    retrievedPages: t.field({
      type: [RetrievedPage],
      args: sliceArgs(t.arg),
      resolve: (turn, args) => sliceList(args, Array.isArray(turn.file_used) ? turn.file_used : []),
    }),
    status: t.exposeString("status", { description: "completed or aborted (empty for chatflow turns)." }),
    timestamp: t.expose("timestamp", { type: "DateTime" }),
    totalTokens: t.exposeInt("total_token"),
    completionTokens: t.exposeInt("completion_tokens"),
    promptTokens: t.exposeInt("prompt_tokens"),
    tempKnowledgeBase: t.field({
      type: KnowledgeBase,
      nullable: true,
      description: "The temporary knowledge base of the files uploaded with this message.",
      resolve: (turn, _args, context) => tempKnowledgeBase(turn, context),
    }),
    uploadedFiles: t.field({
      type: [File],
      description: "The files of the temporary knowledge base.",
      args: sliceArgs(t.arg),
      resolve: async (turn, args, context) => {
        const kb = await tempKnowledgeBase(turn, context);
        if (!kb) return [];
        const refs = sliceList(args, kb.files);
        const files = await Promise.all(refs.map((ref) => context.loaders.file.load(ref.file_id)));
        return files.filter((file) => file !== null);
      },
    }),
  }),
});

import { requireOperator } from "../resolvers/auth.js";
import {
  cleanupOrphanedTempKnowledgeBases,
  createKnowledgeBase,
  deleteFiles,
  deleteKnowledgeBase,
  renameKnowledgeBase,
} from "../resolvers/knowledge-bases.js";
import { builder } from "./builder.js";
import { KnowledgeBase } from "./knowledge-base.js";

builder.mutationFields((fields) => {
  const t = fields.withAuth({ loggedIn: true });
  return {
    createKnowledgeBase: t.field({
      nullable: true,
      type: KnowledgeBase,
      description: "Creates a knowledge base (`{username}_{uuid4}`) and its Milvus collection.",
      args: { name: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => createKnowledgeBase(context, context.viewer.username, args.name),
    }),
    renameKnowledgeBase: t.field({
      nullable: true,
      type: KnowledgeBase,
      args: { knowledgeBaseId: t.arg.string({ required: true }), name: t.arg.string({ required: true }) },
      resolve: (_root, args, context) =>
        renameKnowledgeBase(context, context.viewer.username, args.knowledgeBaseId, args.name),
    }),
    deleteKnowledgeBase: t.string({
      nullable: true,
      description:
        "Deletes a knowledge base everywhere (Milvus collection, S3 objects, files, references in model configs and conversations) " +
        "and answers its id. CONFLICT while another request changes it; CASCADE_INCOMPLETE says what is left, and the same call finishes it.",
      args: { knowledgeBaseId: t.arg.string({ required: true }) },
      resolve: async (_root, args, context) => {
        await deleteKnowledgeBase(context, context.viewer.username, args.knowledgeBaseId);
        return args.knowledgeBaseId;
      },
    }),
    deleteFiles: t.stringList({
      nullable: true,
      description:
        "Deletes files of any of the caller's knowledge bases (Milvus rows, S3 objects, refs, documents) and answers their ids.",
      args: { fileIds: t.arg.stringList({ required: true }) },
      resolve: (_root, args, context) => deleteFiles(context, context.viewer.username, args.fileIds),
    }),
    cleanupOrphanedTempKnowledgeBases: t.stringList({
      nullable: true,
      description:
        "Deletes temporary knowledge bases whose conversation or chatflow no longer exists and answers their ids. " +
        "allUsers covers every user's data and needs a username listed in OPERATOR_USERNAMES.",
      args: { allUsers: t.arg.boolean({ required: false, defaultValue: false }) },
      resolve: (_root, args, context) => {
        if (args.allUsers) requireOperator(context, "allUsers");
        return cleanupOrphanedTempKnowledgeBases(context, args.allUsers ? null : context.viewer.username);
      },
    }),
  };
});

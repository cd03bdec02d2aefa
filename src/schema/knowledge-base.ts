import type { FileDoc, FileRef, KnowledgeBaseDoc } from "../stores/documents.js";
import { arrayConnection } from "../lib/pagination.js";
import { builder } from "./builder.js";
import { hasKeys } from "./global-id.js";
import { File } from "./file.js";

export const KnowledgeBase = builder.objectRef<KnowledgeBaseDoc>("KnowledgeBase");

builder.node(KnowledgeBase, {
  description: "A knowledge base: its files, their page images, and one Milvus collection of token vectors.",
  id: { resolve: (kb) => kb.knowledge_base_id },
  isTypeOf: (value) => hasKeys(value, "knowledge_base_id", "knowledge_base_name"),
  loadMany: (ids, context) => ids.map((id) => context.loaders.knowledgeBase.load(id)),
  fields: (t) => ({
    knowledgeBaseId: t.exposeString("knowledge_base_id", {
      description: "LAYRA's id, `{username}_{uuid4}` (or `temp_...`).",
    }),
    name: t.exposeString("knowledge_base_name"),
    isTemporary: t.exposeBoolean("is_delete", {
      description: "True for a chat-upload knowledge base (LAYRA's `is_delete` flag, which never means deleted).",
    }),
    createdAt: t.expose("created_at", { type: "DateTime" }),
    lastModifiedAt: t.expose("last_modify_at", { type: "DateTime" }),
    fileCount: t.int({ resolve: (kb) => kb.files.length }),
    files: t.connection({
      type: File,
      args: {
        keyword: t.arg.string({
          required: false,
          description: "Case-insensitive filename substring, matched literally.",
        }),
      },
      resolve: (kb, args, context) => {
        const keyword = args.keyword?.toLowerCase();
        const refs = keyword ? kb.files.filter((ref) => ref.filename.toLowerCase().includes(keyword)) : kb.files;
        return arrayConnection(args, refs, async (window) => {
          const docs = await context.loaders.file.loadMany(window.map((ref) => ref.file_id));
          return window.map((ref, i) => fileOrRef(docs[i], ref, kb));
        });
      },
    }),
  }),
});

/**
 * LAYRA pushes the KB's file ref before the page images exist (docs/layra-contract.md, "Ingestion
 * order"), and a `files` document can be missing while ingestion runs: the ref alone still describes
 * the file.
 */
function fileOrRef(doc: FileDoc | null | Error | undefined, ref: FileRef, kb: KnowledgeBaseDoc): FileDoc {
  if (doc && !(doc instanceof Error)) return doc;
  return {
    ...ref,
    username: kb.username,
    knowledge_db_id: kb.knowledge_base_id,
    images: [],
    last_modify_at: ref.created_at,
    is_delete: false,
  };
}

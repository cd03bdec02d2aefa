import type { FileDoc, PageImageDoc } from "../stores/documents.js";
import { loadPageImage, presignOwnKey } from "../resolvers/owned-reads.js";
import { builder } from "./builder.js";
import { sliceArgs } from "./lists.js";
import { sliceList } from "../lib/pagination.js";
import { hasKeys } from "./global-id.js";
import { KnowledgeBase } from "./knowledge-base.js";

/** A page image with the file it belongs to (its URL and ownership come from the file). */
export interface PageImageShape {
  image: PageImageDoc;
  file: FileDoc;
}

export const File = builder.objectRef<FileDoc>("File");
export const PageImage = builder.objectRef<PageImageShape>("PageImage");

builder.node(File, {
  description: "An uploaded document, rendered to one page image per page.",
  id: { resolve: (file) => file.file_id },
  isTypeOf: (value) => hasKeys(value, "file_id", "knowledge_db_id"),
  loadMany: (ids, context) => ids.map((id) => context.loaders.file.load(id)),
  fields: (t) => ({
    fileId: t.exposeString("file_id"),
    filename: t.exposeString("filename"),
    knowledgeBaseId: t.exposeString("knowledge_db_id"),
    knowledgeBase: t.field({
      type: KnowledgeBase,
      nullable: true,
      resolve: (file, _args, context) => context.loaders.knowledgeBase.load(file.knowledge_db_id),
    }),
    url: t.string({
      nullable: true,
      description:
        "A fresh, short-lived presigned URL of the original file; null when its object key is not the owner's LAYRA key.",
      resolve: (file, _args, context) => presignOwnKey(context, file.minio_filename),
    }),
    pageCount: t.int({ resolve: (file) => file.images.length }),
    pages: t.field({
      type: [PageImage],
      description: "The page images in page order (1-based page numbers), `first` of them from `offset`.",
      args: sliceArgs(t.arg),
      resolve: (file, args) =>
        sliceList(
          args,
          [...file.images].sort((a, b) => a.page_number - b.page_number),
        ).map((image) => ({ image, file })),
    }),
    createdAt: t.expose("created_at", { type: "DateTime" }),
    lastModifiedAt: t.expose("last_modify_at", { type: "DateTime" }),
  }),
});

builder.node(PageImage, {
  description: "One rendered page: the unit LAYRA embeds and retrieves.",
  id: { resolve: (page) => page.image.images_id },
  isTypeOf: (value) => hasKeys(value, "image", "file"),
  loadMany: (ids, context) => ids.map((id) => loadPageImage(context, id)),
  fields: (t) => ({
    imageId: t.string({
      description: "LAYRA's `images_id`, equal to Milvus `image_id`.",
      resolve: (page) => page.image.images_id,
    }),
    pageNumber: t.int({ description: "1-based, as in MongoDB.", resolve: (page) => page.image.page_number }),
    url: t.string({
      nullable: true,
      description:
        "A fresh, short-lived presigned URL of the page PNG; null when its object key is not the owner's LAYRA key.",
      resolve: (page, _args, context) => presignOwnKey(context, page.image.minio_filename),
    }),
    file: t.field({ type: File, resolve: (page) => page.file }),
  }),
});

// Upload and ingestion (docs/ingestion.md): files in over the GraphQL multipart request spec, or
// large ones straight to S3 with presigned URLs; either way a LAYRA task followed by taskProgress.
import { GraphQLError } from "graphql";
import {
  commitUploads,
  createUploadUrls,
  uploadChatFiles,
  uploadFiles,
  type UploadTask as UploadTaskShape,
  type UploadTaskFile,
  type UploadUrls as UploadUrlsShape,
} from "../domain/ingestion/upload.js";
import { builder } from "./builder.js";

// The spec's conventional name: `File` is already LAYRA's file object type.
builder.scalarType("Upload", {
  description:
    "A file part of a multipart request (GraphQL multipart request spec; Yoga hands it over as a web File). " +
    "Input only; send the `x-graphql-csrf` header.",
  serialize: () => {
    throw new GraphQLError("Upload is an input-only scalar");
  },
  // Yoga's multipart parser hands over its fetch ponyfill's File, not the global class: check the shape.
  parseValue: (value) => {
    const file = value as File | null;
    if (typeof file?.name !== "string" || typeof file.size !== "number" || typeof file.arrayBuffer !== "function")
      throw new GraphQLError("Upload must be a file part of a multipart request");
    return file;
  },
});

const UploadTaskFileRef = builder.objectRef<UploadTaskFile>("UploadTaskFile").implement({
  fields: (t) => ({
    id: t.exposeString("id", { description: "The file id, `{username}_{uuid4}` (the future `files` document)." }),
    filename: t.exposeString("filename"),
    url: t.exposeString("url", { description: "A short-lived presigned GET URL of the original." }),
  }),
});

const UploadTask = builder.objectRef<UploadTaskShape>("UploadTask").implement({
  description: "An ingestion task started by an upload; follow it with `subscription { taskProgress(taskId) }`.",
  fields: (t) => ({
    taskId: t.exposeString("taskId", { description: "`{username}_{uuid4}`, LAYRA's task id." }),
    knowledgeBaseId: t.exposeString("knowledgeBaseId"),
    files: t.field({ type: [UploadTaskFileRef], resolve: (task) => task.files }),
  }),
});

const UploadUrl = builder.objectRef<UploadUrlsShape["files"][number]>("UploadUrl").implement({
  fields: (t) => ({
    filename: t.exposeString("filename"),
    url: t.exposeString("url", { description: "PUT the original's bytes here before `expiresAt`." }),
  }),
});

const UploadUrls = builder.objectRef<UploadUrlsShape>("UploadUrls").implement({
  fields: (t) => ({
    uploadId: t.exposeString("uploadId", { description: "Pass to `commitUploads` once every PUT is done." }),
    expiresAt: t.expose("expiresAt", { type: "DateTime" }),
    files: t.field({ type: [UploadUrl], resolve: (urls) => urls.files }),
  }),
});

const UploadFileInput = builder.inputType("UploadFileInput", {
  fields: (t) => ({
    filename: t.string({ required: true }),
    contentType: t.string({ required: true }),
    size: t.float({
      required: true,
      description: "Bytes; the commit checks the uploaded object has exactly this size.",
    }),
  }),
});

builder.mutationFields((fields) => {
  const t = fields.withAuth({ loggedIn: true });
  return {
    uploadFiles: t.field({
      type: UploadTask,
      description:
        "Uploads files into one of the caller's knowledge bases and starts their ingestion. Refused as a whole, naming the file, " +
        "for zero files, an empty file, a name with path separators or control characters, an unsupported type or a size over the limit. " +
        "Bodies over UPLOAD_MAX_REQUEST_BYTES are refused before they are read: use createUploadUrls for large files.",
      args: {
        knowledgeBaseId: t.arg.string({ required: true }),
        files: t.arg({ type: ["Upload"], required: true }),
      },
      resolve: (_root, args, context) =>
        uploadFiles(context, context.viewer.username, args.knowledgeBaseId, args.files),
    }),
    uploadChatFiles: t.field({
      type: UploadTask,
      description:
        "Attachments of a conversation or chatflow: a new temporary knowledge base (as LAYRA's chat upload) and its ingestion. " +
        "A turn references it by `temp_db` = knowledgeBaseId.",
      args: {
        sessionId: t.arg.string({ required: true, description: "The conversation or chatflow id." }),
        files: t.arg({ type: ["Upload"], required: true }),
      },
      resolve: (_root, args, context) => uploadChatFiles(context, context.viewer.username, args.sessionId, args.files),
    }),
    createUploadUrls: t.field({
      type: UploadUrls,
      description:
        "Short-lived presigned PUT URLs for large originals (they never pass through the gateway); then commitUploads.",
      args: {
        knowledgeBaseId: t.arg.string({ required: true }),
        files: t.arg({ type: [UploadFileInput], required: true }),
      },
      resolve: (_root, args, context) =>
        createUploadUrls(context, context.viewer.username, args.knowledgeBaseId, args.files),
    }),
    commitUploads: t.field({
      type: UploadTask,
      description:
        "Checks every original of createUploadUrls is in place with its declared size, then starts the task.",
      args: { uploadId: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => commitUploads(context, context.viewer.username, args.uploadId),
    }),
  };
});

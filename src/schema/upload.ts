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
} from "../resolvers/ingestion/upload.js";
import { builder } from "./builder.js";
import { listSize } from "./lists.js";

/** UPLOAD_MAX_FILES can be at most 1000 (src/config.ts): the most files one upload lists. */
const MAX_UPLOAD_FILES = 1000;

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
    files: t.field({ type: [UploadTaskFileRef], ...listSize(MAX_UPLOAD_FILES), resolve: (task) => task.files }),
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
    expiresAt: t.expose("expiresAt", { type: "DateTime", description: "When the PUT URLs stop working." }),
    commitBy: t.expose("commitBy", {
      type: "DateTime",
      description:
        "The commit deadline (the URLs' expiry plus UPLOAD_COMMIT_GRACE_SECONDS): a later commitUploads is UPLOAD_EXPIRED, " +
        "and the uploaded objects are deleted.",
    }),
    files: t.field({ type: [UploadUrl], ...listSize(MAX_UPLOAD_FILES), resolve: (urls) => urls.files }),
  }),
});

const UploadFileInput = builder.inputType("UploadFileInput", {
  fields: (t) => ({
    filename: t.string({ required: true }),
    contentType: t.string({
      required: true,
      description:
        "The PUT's Content-Type, exactly (the URL's signature covers it). The stored type is decided from the file's bytes.",
    }),
    size: t.float({
      required: true,
      description: "Bytes: the PUT must send exactly this many (the URL's signature covers its Content-Length).",
    }),
  }),
});

builder.mutationFields((fields) => {
  const t = fields.withAuth({ loggedIn: true });
  return {
    uploadFiles: t.field({
      nullable: true,
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
      nullable: true,
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
      nullable: true,
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
      nullable: true,
      type: UploadTask,
      description:
        "Checks every original of createUploadUrls is in place with its declared size, then starts the task. " +
        "Once per upload, before its `commitBy` deadline (later: UPLOAD_EXPIRED).",
      args: { uploadId: t.arg.string({ required: true }) },
      resolve: (_root, args, context) => commitUploads(context, context.viewer.username, args.uploadId),
    }),
  };
});

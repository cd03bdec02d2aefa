// Starting an ingestion task the way LAYRA's upload endpoints do (docs/ingestion.md): the task
// hash (four fields, one hour), the originals under LAYRA's key shape, then one Kafka message per
// file in LAYRA's exact shape, so LAYRA's own consumers or the gateway's workers can ingest them.
// Every input is checked before anything is written; a failure after the first write undoes it.
import { randomUUID } from "node:crypto";
import { ObjectId } from "mongodb";
import type { Context } from "../../context.js";
import { BadUserInput, LimitExceeded, NotFound, UploadExpired } from "../../errors.js";
import {
  encodeEmbeddingMessage,
  filenameProblem,
  originalObjectKey,
  TASK_INITIAL_MESSAGE,
  TASK_TTL_SECONDS,
} from "../../lib/ingestion-contract.js";
import { isOwnUserId } from "../../lib/layra-ids.js";
import { requireTempBaseRoom } from "../conversations.js";
import { storedContentType } from "../../lib/object-types.js";
import { insertKnowledgeBase } from "../knowledge-bases.js";
import type { PendingUpload } from "../../stores/pending-uploads.js";

export interface UploadTaskFile {
  id: string;
  filename: string;
  url: string;
}

/** What an upload answers: LAYRA's `{task_id, knowledge_db_id, files}` without the stored 100-year URLs. */
export interface UploadTask {
  taskId: string;
  knowledgeBaseId: string;
  files: UploadTaskFile[];
}

/** A file of the multipart request (Yoga's File: a web File, read only when everything checked out). */
export interface UploadedFile {
  name: string;
  type: string;
  size: number;
  arrayBuffer(): Promise<ArrayBuffer>;
}

export interface DeclaredFile {
  filename: string;
  contentType: string;
  size: number;
}

interface PlannedFile {
  fileId: string;
  filename: string;
  objectKey: string;
}

/** Zero files, empty, badly named, unsupported or too large: the whole call is refused, naming the file. */
function checkFiles(
  context: Context,
  username: string,
  argument: string,
  files: readonly { name: string; size: number }[],
): void {
  const { maxFiles, maxFileBytes } = context.config.upload;
  if (files.length === 0) throw new BadUserInput(argument, "must contain at least one file");
  if (files.length > maxFiles) throw new BadUserInput(argument, `must contain at most ${maxFiles} files`);
  files.forEach((file, index) => {
    const name = JSON.stringify(file.name);
    const problem = filenameProblem(file.name, username);
    if (problem) throw new BadUserInput(`${argument}[${index}]`, `${name} ${problem}`);
    if (!Number.isSafeInteger(file.size) || file.size <= 0)
      throw new BadUserInput(`${argument}[${index}]`, `${name} is empty`);
    if (file.size > maxFileBytes) {
      const error = new LimitExceeded("file size", file.size, maxFileBytes, " bytes");
      throw new BadUserInput(`${argument}[${index}]`, `${name}: ${error.message}`);
    }
  });
}

/**
 * One multipart part is one file: the multipart request's map may send the same part to several
 * variables, which would store and ingest it once per variable.
 */
function checkDistinctParts(argument: string, files: readonly UploadedFile[]): void {
  const first = new Map<UploadedFile, number>();
  files.forEach((file, index) => {
    const earlier = first.get(file);
    if (earlier !== undefined)
      throw new BadUserInput(`${argument}[${index}]`, `is the same multipart part as ${argument}[${earlier}]`);
    first.set(file, index);
  });
}

function planFiles(username: string, names: readonly string[]): PlannedFile[] {
  return names.map((filename) => ({
    fileId: `${username}_${randomUUID()}`,
    filename,
    objectKey: originalObjectKey(username, filename, new ObjectId().toHexString()),
  }));
}

/** The caller's own, non-temporary knowledge base; another user's answers exactly like a missing one. */
async function requireOwnKnowledgeBase(context: Context, username: string, knowledgeBaseId: string) {
  const knowledgeBase = await context.stores.mongo.knowledgeBases.findSummary(knowledgeBaseId);
  if (!knowledgeBase || knowledgeBase.username !== username) throw new NotFound("knowledge base", knowledgeBaseId);
  return knowledgeBase;
}

/** HSET + EXPIRE the task, then one message per file; on a failure the task hash goes again. */
async function enqueue(
  context: Context,
  username: string,
  knowledgeBaseId: string,
  files: PlannedFile[],
  undo: () => Promise<unknown>,
): Promise<UploadTask> {
  const { redis, s3, kafka } = context.stores;
  const taskId = `${username}_${randomUUID()}`;
  const answer = files.map((file) => ({ ...file, url: s3.presignGet(file.objectKey) }));
  try {
    await redis.tasks.init(taskId, files.length, TASK_INITIAL_MESSAGE, TASK_TTL_SECONDS);
    await kafka.produce(
      answer.map((file) =>
        encodeEmbeddingMessage({
          task_id: taskId,
          username,
          knowledge_db_id: knowledgeBaseId,
          file_meta: {
            file_id: file.fileId,
            minio_filename: file.objectKey,
            original_filename: file.filename,
            minio_url: file.url,
          },
        }),
      ),
    );
  } catch (error) {
    await Promise.allSettled([redis.tasks.delete(taskId), undo()]);
    throw error;
  }
  return {
    taskId,
    knowledgeBaseId,
    files: answer.map((file) => ({ id: file.fileId, filename: file.filename, url: file.url })),
  };
}

/** Stores the originals (LAYRA's key shape, the content type their bytes prove) and enqueues them. */
async function storeAndEnqueue(
  context: Context,
  username: string,
  knowledgeBaseId: string,
  files: readonly UploadedFile[],
  undoBase: () => Promise<unknown> = async () => undefined,
): Promise<UploadTask> {
  const planned = planFiles(
    username,
    files.map((file) => file.name),
  );
  const { s3 } = context.stores;
  const undo = () => Promise.allSettled([s3.removeObjects(planned.map((file) => file.objectKey)), undoBase()]);
  try {
    for (const [index, file] of files.entries()) {
      const body = Buffer.from(await file.arrayBuffer());
      await s3.putObject(planned[index]!.objectKey, body, await storedContentType(body));
    }
  } catch (error) {
    await undo();
    throw error;
  }
  return enqueue(context, username, knowledgeBaseId, planned, undo);
}

export async function uploadFiles(
  context: Context,
  username: string,
  knowledgeBaseId: string,
  files: readonly UploadedFile[],
): Promise<UploadTask> {
  checkFiles(context, username, "files", files);
  checkDistinctParts("files", files);
  await requireOwnKnowledgeBase(context, username, knowledgeBaseId);
  return storeAndEnqueue(context, username, knowledgeBaseId, files);
}

/** The owner of a conversation or chatflow with this id, or null when neither exists. */
async function sessionOwner(context: Context, sessionId: string): Promise<string | null> {
  const { conversations, chatflows } = context.stores.mongo;
  const [conversation] = await conversations.owners([sessionId]);
  if (conversation) return conversation.username;
  const [chatflow] = await chatflows.owners([sessionId]);
  return chatflow?.username ?? null;
}

/**
 * A conversation's or chatflow's attachments: a new temp knowledge base per upload, exactly as
 * LAYRA's chat upload creates it (id `temp_{sessionId}_{uuid4}`, name `temp_base_{username}_{uuid4}`
 * with the same uuid, `is_delete: true`) and its Milvus collection. The session must be the caller's:
 * an existing one by its document, a new one (LAYRA's client picks the id before the first turn) by
 * its `{username}_{uuid4}` shape.
 */
export async function uploadChatFiles(
  context: Context,
  username: string,
  sessionId: string,
  files: readonly UploadedFile[],
): Promise<UploadTask> {
  checkFiles(context, username, "files", files);
  checkDistinctParts("files", files);
  const owner = await sessionOwner(context, sessionId);
  if (owner !== null ? owner !== username : !isOwnUserId(sessionId, username)) throw new NotFound("session", sessionId);
  await requireTempBaseRoom(context, username);
  const uuid = randomUUID();
  const knowledgeBase = await insertKnowledgeBase(context, {
    knowledge_base_id: `temp_${sessionId}_${uuid}`,
    knowledge_base_name: `temp_base_${username}_${uuid}`,
    username,
    is_delete: true,
  });
  const { mongo, milvus } = context.stores;
  const undoBase = () =>
    Promise.allSettled([
      mongo.knowledgeBases.deleteById(knowledgeBase.knowledge_base_id),
      milvus.dropCollection(knowledgeBase.knowledge_base_id),
    ]);
  return storeAndEnqueue(context, username, knowledgeBase.knowledge_base_id, files, undoBase);
}

export interface UploadUrls {
  uploadId: string;
  expiresAt: Date;
  commitBy: Date;
  files: { filename: string; url: string; objectKey: string }[];
}

/**
 * Where a presigned upload's PUT goes: a key of no LAYRA shape, never served, that the commit copies
 * from. The original is then at a key the PUT URL cannot reach, so nothing the uploader does after
 * the commit changes what was committed.
 */
const stagingKey = (uploadId: string, index: number) => `upload-staging_${uploadId}_${index}`;

/** A media type as a Content-Type header carries it (`type/subtype`, parameters allowed). */
const CONTENT_TYPE = /^[\w!#$&^.+-]{1,127}\/[\w!#$&^.+-]{1,127}(;[\x20-\x7e]{0,200})?$/;

/**
 * The presigned path for large files: short-lived PUT URLs, and an upload id that commitUploads
 * turns into a task. Each URL's signature covers the declared Content-Type and size, so the PUT
 * must send exactly those. Nothing is written to S3 here; the upload is indexed until a commit or,
 * after its deadline, the sweep (./upload-sweep.ts) claims it.
 */
export async function createUploadUrls(
  context: Context,
  username: string,
  knowledgeBaseId: string,
  declared: readonly DeclaredFile[],
): Promise<UploadUrls> {
  checkFiles(
    context,
    username,
    "files",
    declared.map((file) => ({ name: file.filename, size: file.size })),
  );
  declared.forEach((file, index) => {
    if (!CONTENT_TYPE.test(file.contentType))
      throw new BadUserInput(`files[${index}].contentType`, `${JSON.stringify(file.contentType)} is not a media type`);
  });
  await requireOwnKnowledgeBase(context, username, knowledgeBaseId);
  const { urlExpirySeconds } = context.config.upload;
  // The deadline outlives the URLs a little, so a PUT that started just before expiry can still be committed.
  const commitSeconds = urlExpirySeconds + context.config.uploadSweep.commitGraceSeconds;
  const planned = planFiles(
    username,
    declared.map((file) => file.filename),
  );
  const uploadId = `${username}_${randomUUID()}`;
  const pending: PendingUpload = {
    username,
    knowledgeBaseId,
    files: planned.map((file, index) => ({
      ...file,
      stagingKey: stagingKey(uploadId, index),
      contentType: declared[index]!.contentType,
      size: declared[index]!.size,
    })),
  };
  const { redis, s3 } = context.stores;
  const started = Date.now();
  await redis.pendingUploads.save(uploadId, pending, commitSeconds * 1000);
  return {
    uploadId,
    expiresAt: new Date(started + urlExpirySeconds * 1000),
    commitBy: new Date(started + commitSeconds * 1000),
    files: pending.files.map((file) => ({
      filename: file.filename,
      objectKey: file.objectKey,
      url: s3.presignPut(file.stagingKey, urlExpirySeconds, file),
    })),
  };
}

/**
 * Copies each PUT object to its original's key, with the content type its bytes prove and no other
 * metadata (a header the PUT added is not carried over), if it is still the object whose size was
 * checked. False when one changed or went meanwhile.
 */
async function copyToOriginals(context: Context, pending: PendingUpload, etags: string[]): Promise<boolean> {
  const { s3 } = context.stores;
  for (const [index, file] of pending.files.entries()) {
    const head = await s3.readHead(file.stagingKey);
    if (head === null) return false;
    if (!(await s3.copyObject(file.stagingKey, file.objectKey, etags[index]!, await storedContentType(head))))
      return false;
  }
  return true;
}

/**
 * Checks every declared object exists with its declared size, copies it to its original's key and
 * starts the task (once). After the commit deadline the upload belongs to the sweep: UPLOAD_EXPIRED,
 * and its objects go.
 */
export async function commitUploads(context: Context, username: string, uploadId: string): Promise<UploadTask> {
  const { redis, s3 } = context.stores;
  const uploads = redis.pendingUploads;
  const pending = await uploads.read(uploadId);
  if (!pending) {
    // The record ends at the deadline; the index says whether this was an upload that expired.
    if (isOwnUserId(uploadId, username) && (await uploads.isExpired(uploadId))) throw new UploadExpired(uploadId);
    throw new NotFound("upload", uploadId);
  }
  if (pending.username !== username) throw new NotFound("upload", uploadId);
  const etags: string[] = [];
  for (const [index, file] of pending.files.entries()) {
    const info = await s3.objectInfo(file.stagingKey);
    if (info === null)
      throw new BadUserInput(`files[${index}]`, `${JSON.stringify(file.filename)} was not uploaded to its URL`);
    if (info.size !== file.size)
      throw new BadUserInput(
        `files[${index}]`,
        `${JSON.stringify(file.filename)} has ${info.size} bytes where ${file.size} were declared`,
      );
    etags.push(info.etag);
  }
  await requireOwnKnowledgeBase(context, username, pending.knowledgeBaseId);
  // Exactly one of this commit, a concurrent commit and the sweep gets the upload.
  const claim = await uploads.claimForCommit(uploadId);
  if (claim.state === "expired") throw new UploadExpired(uploadId);
  if (claim.state === "gone") throw new NotFound("upload", uploadId);
  const { deadline } = claim;
  // When the task cannot be started the upload goes back as it was, its PUT objects included: the
  // same commit can be retried until the deadline, and the sweep still removes them if it never succeeds.
  const originals = pending.files.map((file) => file.objectKey);
  const undo = () =>
    Promise.allSettled([
      s3.removeObjects(originals),
      uploads
        .restore(uploadId, pending, deadline)
        .catch(() => s3.removeObjects(pending.files.map((file) => file.stagingKey))),
    ]);
  let copied: boolean;
  try {
    copied = await copyToOriginals(context, pending, etags);
  } catch (error) {
    await undo();
    throw error;
  }
  if (!copied) {
    await undo();
    throw new BadUserInput("uploadId", "a file was uploaded again during the commit: commit once every PUT is done");
  }
  const task = await enqueue(context, username, pending.knowledgeBaseId, pending.files, undo);
  // The task owns the copies now. A PUT object that cannot be removed stays (at most its declared
  // size, written before the URL expired): the commit succeeded, so it is not failed for it.
  await s3.removeObjects(pending.files.map((file) => file.stagingKey)).catch(() => undefined);
  return task;
}

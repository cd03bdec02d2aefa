// Backup and restore of one knowledge base as one portable archive: gzip'd JSON lines holding its
// Mongo documents (Extended JSON, so Dates survive), its Milvus rows with their float32 vectors,
// and its S3 objects. Only the stores' own APIs are used; Milvus rows are read with a pk-paged
// iterator, never one huge query.
import { createGunzip, createGzip } from "node:zlib";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { BSON } from "mongodb";
import type { FileDoc, KnowledgeBaseDoc } from "../stores/documents.js";
import type { Stores } from "../stores/index.js";

const FORMAT = "layra-kb-archive";
const VERSION = 1;
const VECTOR_BATCH = 1000;

type ArchiveRecord =
  | { kind: "header"; format: string; version: number; knowledgeBaseId: string; createdAt: string }
  | { kind: "knowledge_base"; doc: string }
  | { kind: "file"; doc: string }
  | { kind: "vectors"; rows: { image_id: string; page_number: number; file_id: string; vector: string }[] }
  | { kind: "object"; key: string; contentType: string; data: string }
  | { kind: "end"; counts: ArchiveCounts };

export interface ArchiveCounts {
  files: number;
  vectors: number;
  objects: number;
}

export type ArchiveProgress = (phase: "files" | "vectors" | "objects", done: number, total: number) => void;

const encodeVector = (vector: number[]) => Buffer.from(new Float32Array(vector).buffer).toString("base64");
const decodeVector = (data: string) => {
  const bytes = Buffer.from(data, "base64");
  return Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4));
};

/** Writes the archive of `knowledgeBaseId` to `output` and resolves with what it holds. */
export async function backupKnowledgeBase(
  stores: Stores,
  knowledgeBaseId: string,
  output: Writable,
  progress: ArchiveProgress = () => {},
): Promise<ArchiveCounts> {
  const kb = await stores.mongo.knowledgeBases.findById(knowledgeBaseId);
  if (!kb) throw new Error(`knowledge base ${knowledgeBaseId} not found`);
  const gzip = createGzip();
  const done = new Promise<void>((resolve, reject) => {
    output.on("finish", resolve).on("error", reject);
    gzip.on("error", reject);
  });
  gzip.pipe(output);
  const write = async (record: ArchiveRecord) => {
    if (!gzip.write(`${JSON.stringify(record)}\n`)) await new Promise((resolve) => gzip.once("drain", resolve));
  };
  const counts: ArchiveCounts = { files: 0, vectors: 0, objects: 0 };

  await write({
    kind: "header",
    format: FORMAT,
    version: VERSION,
    knowledgeBaseId,
    createdAt: new Date().toISOString(),
  });
  await write({ kind: "knowledge_base", doc: BSON.EJSON.stringify(kb, { relaxed: false }) });
  const files = await stores.mongo.files.findByKnowledgeBase(knowledgeBaseId);
  for (const file of files) {
    await write({ kind: "file", doc: BSON.EJSON.stringify(file, { relaxed: false }) });
    progress("files", ++counts.files, files.length);
  }

  const total = (await stores.milvus.rowCount(knowledgeBaseId)) ?? 0;
  for await (const batch of stores.milvus.rows(knowledgeBaseId, VECTOR_BATCH)) {
    await write({
      kind: "vectors",
      rows: batch.map((row) => ({
        image_id: row.image_id,
        page_number: row.page_number,
        file_id: row.file_id,
        vector: encodeVector(row.vector),
      })),
    });
    counts.vectors += batch.length;
    progress("vectors", counts.vectors, total);
  }

  const keys = files.flatMap((file) => [file.minio_filename, ...file.images.map((image) => image.minio_filename)]);
  for (const key of keys) {
    const [data, contentType] = await Promise.all([stores.s3.getObject(key), stores.s3.contentType(key)]);
    if (!data) throw new Error(`object ${key} of knowledge base ${knowledgeBaseId} is missing`);
    await write({ kind: "object", key, contentType, data: data.toString("base64") });
    progress("objects", ++counts.objects, keys.length);
  }

  await write({ kind: "end", counts });
  gzip.end();
  await done;
  return counts;
}

/**
 * Restores an archive into a deployment that does not hold the knowledge base. The KB document is
 * written last, so an interrupted restore never shows a knowledge base with missing parts.
 */
export async function restoreKnowledgeBase(
  stores: Stores,
  input: Readable,
  progress: ArchiveProgress = () => {},
): Promise<ArchiveCounts> {
  const lines = createInterface({ input: input.pipe(createGunzip()), crlfDelay: Infinity });
  const counts: ArchiveCounts = { files: 0, vectors: 0, objects: 0 };
  let kb: KnowledgeBaseDoc | null = null;
  const files: FileDoc[] = [];
  let expected: ArchiveCounts | null = null;
  let header = false;
  // What this restore wrote, so a refused archive leaves nothing behind (the Mongo documents come last).
  let createdCollection: string | null = null;
  const writtenObjects: string[] = [];
  let insertedFiles = false;
  try {
    for await (const line of lines) {
      if (line === "") continue;
      const record = JSON.parse(line) as ArchiveRecord;
      if (!header) {
        if (record.kind !== "header" || record.format !== FORMAT || record.version !== VERSION)
          throw new Error("not a LAYRA knowledge-base archive (version 1)");
        header = true;
        continue;
      }
      switch (record.kind) {
        case "knowledge_base": {
          kb = BSON.EJSON.parse(record.doc, { relaxed: false }) as KnowledgeBaseDoc;
          if (await stores.mongo.knowledgeBases.findById(kb.knowledge_base_id)) {
            throw new Error(
              `knowledge base ${kb.knowledge_base_id} already exists: restore into a deployment without it`,
            );
          }
          await stores.milvus.createCollection(kb.knowledge_base_id);
          createdCollection = kb.knowledge_base_id;
          await stores.s3.ensureBucket();
          break;
        }
        case "file":
          files.push(BSON.EJSON.parse(record.doc, { relaxed: false }) as FileDoc);
          break;
        case "vectors":
          if (!kb) throw new Error("archive is out of order: vectors before the knowledge base");
          await stores.milvus.insertRows(
            kb.knowledge_base_id,
            record.rows.map((row) => ({ ...row, vector: decodeVector(row.vector) })),
          );
          counts.vectors += record.rows.length;
          progress("vectors", counts.vectors, 0);
          break;
        case "object": {
          const data = Buffer.from(record.data, "base64");
          writtenObjects.push(record.key);
          await stores.s3.putObject(record.key, data, record.contentType);
          progress("objects", ++counts.objects, 0);
          break;
        }
        case "end":
          expected = record.counts;
          break;
        default:
          throw new Error(`unknown archive record ${(record as { kind: string }).kind}`);
      }
    }
    if (!kb || !expected) throw new Error("the archive is truncated: no end record");
    if (files.length !== expected.files || counts.vectors !== expected.vectors || counts.objects !== expected.objects) {
      throw new Error(`the archive is inconsistent: expected ${JSON.stringify(expected)}`);
    }
    if (files.length > 0) await stores.mongo.files.insertMany(files);
    insertedFiles = files.length > 0;
    counts.files = files.length;
    progress("files", counts.files, files.length);
    await stores.mongo.knowledgeBases.insert(kb);
  } catch (error) {
    await Promise.allSettled([
      createdCollection && stores.milvus.dropCollection(createdCollection),
      writtenObjects.length > 0 && stores.s3.removeObjects(writtenObjects),
      insertedFiles && kb && stores.mongo.files.deleteByKnowledgeBase(kb.knowledge_base_id, kb.username),
    ]);
    throw error;
  }
  return counts;
}

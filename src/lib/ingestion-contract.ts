// The shapes LAYRA's ingestion pipeline exchanges (docs/layra-contract.md, "Ingestion order"): the
// Kafka message of one file, the task hash texts, object keys and upload names. Pure: no I/O.
import { createHash } from "node:crypto";

/** The `file_meta` of LAYRA's embedding message, field for field. */
export interface LayraFileMeta {
  file_id: string;
  minio_filename: string;
  original_filename: string;
  minio_url: string;
}

/** LAYRA's embedding message value (`kafka_producer.send_embedding_task`): no `type` field. */
export interface LayraEmbeddingMessage {
  task_id: string;
  username: string;
  knowledge_db_id: string;
  file_meta: LayraFileMeta;
}

/** LAYRA sends every embedding message with the header `priority: "1"` and no key. */
const EMBEDDING_PRIORITY = "1";

export function encodeEmbeddingMessage(message: LayraEmbeddingMessage): {
  value: Buffer;
  headers: Record<string, string>;
} {
  const { task_id, username, knowledge_db_id, file_meta } = message;
  const { file_id, minio_filename, original_filename, minio_url } = file_meta;
  return {
    // Key order as LAYRA builds the dict.
    value: Buffer.from(
      pythonJsonDumps({
        task_id,
        username,
        knowledge_db_id,
        file_meta: { file_id, minio_filename, original_filename, minio_url },
      }),
    ),
    headers: { priority: EMBEDDING_PRIORITY },
  };
}

type StringTree = { [key: string]: string | StringTree };

/**
 * Python's `json.dumps` with its defaults, which LAYRA's producer uses: ", " and ": " between items and
 * every character outside printable ASCII as a lower-case \u escape (astral ones as two surrogates, like
 * JavaScript strings hold them), so the gateway queues byte for byte the message LAYRA would.
 */
function pythonJsonDumps(value: string | StringTree): string {
  if (typeof value === "string")
    return JSON.stringify(value).replace(
      /[\u007f-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
  const items = Object.entries(value).map(([key, item]) => `${pythonJsonDumps(key)}: ${pythonJsonDumps(item)}`);
  return `{${items.join(", ")}}`;
}

export type DecodedTaskMessage =
  | { kind: "embedding"; message: LayraEmbeddingMessage }
  /** A message with a `type` (LAYRA's workflow, debug_resume and input_resume runs): not ours to run. */
  | { kind: "unhandled"; type: string }
  | { kind: "malformed"; reason: string };

const isString = (value: unknown): value is string => typeof value === "string" && value.length > 0;

/** Reads a message value the way LAYRA's consumer dispatches it: by `type`, else an embedding task. */
export function decodeTaskMessage(value: Buffer): DecodedTaskMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString("utf8"));
  } catch {
    return { kind: "malformed", reason: "the value is not JSON" };
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
    return { kind: "malformed", reason: "the value is not a JSON object" };
  const record = parsed as Record<string, unknown>;
  if (record.type !== undefined && record.type !== null) return { kind: "unhandled", type: String(record.type) };
  const meta = record.file_meta as Record<string, unknown> | undefined;
  if (
    !isString(record.task_id) ||
    !isString(record.username) ||
    !isString(record.knowledge_db_id) ||
    !meta ||
    typeof meta !== "object" ||
    !isString(meta.file_id) ||
    !isString(meta.minio_filename) ||
    !isString(meta.original_filename) ||
    typeof meta.minio_url !== "string"
  ) {
    return { kind: "malformed", reason: "missing task_id, username, knowledge_db_id or file_meta fields" };
  }
  return {
    kind: "embedding",
    message: {
      task_id: record.task_id,
      username: record.username,
      knowledge_db_id: record.knowledge_db_id,
      file_meta: {
        file_id: meta.file_id,
        minio_filename: meta.minio_filename,
        original_filename: meta.original_filename,
        minio_url: meta.minio_url,
      },
    },
  };
}

// LAYRA's task hash texts (`task:{task_id}`, Redis task database).
export const TASK_INITIAL_MESSAGE = "Initializing file processing...";
const TASK_COMPLETED_MESSAGE = "All files processed successfully";
export const processingMessage = (filename: string) => `Processing ${filename}...`;
export const failedMessage = (detail: string) => `File processing failed: ${detail}`;
/** LAYRA's task hash lives one hour from the upload. */
export const TASK_TTL_SECONDS = 3600;
/** What the end of a task writes: LAYRA's texts and lifetime. */
export const COMPLETED_TEXTS = {
  failedPrefix: failedMessage(""),
  completed: TASK_COMPLETED_MESSAGE,
  ttlSeconds: TASK_TTL_SECONDS,
};

// What LAYRA's converter does with an extension (`convert_file_to_images`), and what its upload
// dialog accepts (`SupportUploadFormat`): images directly, PDF rendered, the rest through LibreOffice.
const IMAGE_EXTENSIONS = new Set([
  "jpg",
  "jpeg",
  "png",
  "gif",
  "bmp",
  "webp",
  "ico",
  "tiff",
  "tif",
  "dib",
  "jfif",
  "pjpeg",
  "pjp",
]);
const OFFICE_EXTENSIONS = new Set(
  (
    "odm sgl odt ott sxw stw fodt xml docx docm dotx dotm doc dot wps pdb hwp html htm lwp psw rft sdw vor txt " +
    "wpd oth ods ots sxc stc fods xlsx xlsm xltm xltx xlsb xls xlc xlm xlw xlk sdc dif wk1 wks 123 pxl wb2 csv " +
    "odp otp sti sxd fodp pptx pptm ppsx potm potx ppt pps pot sdd sdp odg otg std sgv sda cdr svg vsd vst sxg " +
    "odf sxm smf mml odb"
  ).split(" "),
);

export type SourceKind = "image" | "pdf" | "office";

/** LAYRA's extension: the text after the last dot, lower-cased (`name.split(".")[-1].lower()`). */
export function extensionOf(filename: string): string {
  return filename.includes(".") ? filename.slice(filename.lastIndexOf(".") + 1).toLowerCase() : "";
}

export function sourceKind(filename: string): SourceKind | null {
  const extension = extensionOf(filename);
  if (IMAGE_EXTENSIONS.has(extension)) return "image";
  if (extension === "pdf") return "pdf";
  if (OFFICE_EXTENSIONS.has(extension)) return "office";
  return null;
}

/**
 * The longest object key, in bytes, that LAYRA's MinIO (and the local stack's versitygw) stores: a
 * key without "/" is one file name on the server's disk.
 */
const MAX_OBJECT_KEY_BYTES = 255;
/** A sample ObjectId, for measuring keys (every ObjectId is 24 hex digits). */
const SAMPLE_OBJECT_ID = "0".repeat(24);
/** Bidirectional formatting marks: a name shown with them can read as another name (`exe.pdf` for `fdp.exe`). */
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** Why `username`'s upload name is refused, or null when it is fine. */
export function filenameProblem(filename: string, username: string): string | null {
  if (filename.trim() === "") return "has an empty name";
  if (/[/\\]/.test(filename)) return "has a path separator in its name";
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(filename)) return "has a control character in its name";
  if (BIDI_CONTROLS.test(filename)) return "has a bidirectional formatting character in its name";
  if (/\p{Cs}/u.test(filename)) return "has an unpaired surrogate in its name";
  // The object key's URL is percent-decoded once: `%41` or `..` in a key would not read back as the key.
  if (/%[0-9a-f]{2}/i.test(filename)) return "has a percent escape (%XX) in its name";
  if (filename.includes("..")) return 'has ".." in its name';
  if (sourceKind(filename) === null)
    return `has an unsupported type ${JSON.stringify(extensionOf(filename))} (LAYRA converts images, PDF and office documents)`;
  // The original's key, and its page images' keys (`.png` for the extension), must fit the store.
  const keyBytes = Math.max(
    Buffer.byteLength(originalObjectKey(username, filename, SAMPLE_OBJECT_ID)),
    Buffer.byteLength(pageKey(username, filename, SAMPLE_OBJECT_ID)),
  );
  if (keyBytes > MAX_OBJECT_KEY_BYTES) {
    const nameBytes = Buffer.byteLength(filename);
    return `has a name of ${nameBytes} bytes: at most ${nameBytes - (keyBytes - MAX_OBJECT_KEY_BYTES)} fit the store's object keys`;
  }
  return null;
}

/** `os.path.splitext`: the extension keeps its dot; a leading dot alone is not an extension. */
function splitExtension(filename: string): [string, string] {
  const dot = filename.lastIndexOf(".");
  if (dot <= 0) return [filename, ""];
  return [filename.slice(0, dot), filename.slice(dot)];
}

/** LAYRA's key of an uploaded original: `{username}_{basename}_{ObjectId}{ext}`. */
export function originalObjectKey(username: string, filename: string, objectId: string): string {
  const [base, extension] = splitExtension(filename);
  return `${username}_${base}_${objectId}${extension}`;
}

/**
 * LAYRA's key of a page PNG, `{username}_{basename}_{ObjectId}.png`, with an ObjectId made from the
 * message's timestamp and a hash of (file id, page): the same on every retry of the same message,
 * so a retry overwrites its own objects and a failure knows exactly which ones to remove.
 */
export function pageObjectKey(
  username: string,
  filename: string,
  fileId: string,
  pageIndex: number,
  timestampMs: number,
): string {
  const seconds = Math.floor(timestampMs / 1000) >>> 0;
  const objectId =
    seconds.toString(16).padStart(8, "0") +
    createHash("sha256").update(`${fileId}\u0000${pageIndex}`).digest("hex").slice(0, 16);
  return pageKey(username, filename, objectId);
}

function pageKey(username: string, filename: string, objectId: string): string {
  return `${username}_${splitExtension(filename)[0]}_${objectId}.png`;
}

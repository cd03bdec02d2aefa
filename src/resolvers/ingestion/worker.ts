// The ingestion worker, a Kafka consumer-group member on LAYRA's task topic: a file's document is published only
// once every page is stored, and its offset committed only then (docs/ingestion.md, "The worker").
import { setTimeout as sleep } from "node:timers/promises";
import { GraphQLError } from "graphql";
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Config } from "../../config.js";
import {
  COMPLETED_TEXTS,
  decodeTaskMessage,
  failedMessage,
  pageObjectKey,
  processingMessage,
  TASK_TTL_SECONDS,
  type LayraEmbeddingMessage,
  type LayraFileMeta,
} from "../../lib/ingestion-contract.js";
import type { Metrics } from "../../observability/metrics.js";
import type { FileRef, PageImageDoc } from "../../stores/documents.js";
import type { Stores } from "../../stores/index.js";
import type { KafkaConsumerHandle, ReceivedMessage } from "../../stores/kafka.js";
import { lockKey } from "../../stores/lock.js";
import { ObjectTooLarge } from "../../stores/s3.js";
import { pageCodeObjectKey } from "../../stores/page-code-objects.js";
import { encodePage, type PageCodes } from "../../lib/page-codes.js";
import { toMatrix } from "../../lib/maxsim.js";
import { ConversionError, RendererStopped, type Renderer } from "./page-renderer.js";
import { errorMessage, typedError, UpstreamUnavailable } from "../../errors.js";

export interface WorkerDeps {
  config: Config;
  stores: Stores;
  renderer: Renderer;
  logger: Logger;
  metrics: Metrics;
}

/** How long an attempt's mark outlives a crashed worker (a redelivery normally comes within minutes). */
const ATTEMPT_MARK_SECONDS = 7 * 24 * 3600;

/** The `type`s of LAYRA's own workflow messages on the same topic (bounded metric labels). */
const LAYRA_MESSAGE_TYPES = new Set(["workflow", "debug_resume", "input_resume"]);

/** A failure that retrying the same file cannot fix (a broken file, a deleted knowledge base). */
class PermanentFailure extends Error {}

const isPermanent = (error: unknown): error is PermanentFailure | ConversionError =>
  error instanceof PermanentFailure || error instanceof ConversionError;

/**
 * What a failed file's task says to its user: the worker's own words for the failures it names, never a
 * library's raw text, which can hold a store's address or a path (the log has it, redacted).
 */
const failureText = (error: unknown): string =>
  isPermanent(error) || error instanceof GraphQLError ? error.message : "an internal error in the worker";

/** Holds `lock:ingest_file:{file_id}` while `work` runs: two members never ingest the same file at once. */
function withFileLock<T>(deps: WorkerDeps, fileId: string, work: () => Promise<T>): Promise<T> {
  // After a rebalance the previous owner may still be finishing this file: wait for it, then re-check.
  // A dead member loses its partitions after the session timeout; its file lock goes after the same time.
  return deps.stores.redis.locks.holdWhenFree(
    lockKey("ingest_file", fileId),
    deps.config.kafka.sessionTimeoutMs,
    work,
    500,
  );
}

/**
 * Pushes the ref holding `lock:ingest_kb_files:{id}`: FerretDB applies an update as a read and a
 * write of the whole document, so two workers' concurrent pushes into one base could lose one.
 */
function addFileRefLocked(deps: WorkerDeps, knowledgeBaseId: string, ref: FileRef): Promise<boolean> {
  return deps.stores.redis.locks.holdWhenFree(lockKey("ingest_kb_files", knowledgeBaseId), 30_000, () =>
    deps.stores.mongo.knowledgeBases.pushFileRef(knowledgeBaseId, ref),
  );
}

/**
 * Runs `work` holding `lock:knowledge_base:{id}`, the lock a delete of the base takes, once the base is
 * found still there: a base deleted during ingestion is never written to again (no collection re-created,
 * no rows, no document). A delete that comes meanwhile answers CONFLICT for that moment.
 */
function withLiveKnowledgeBase<T>(
  deps: WorkerDeps,
  message: LayraEmbeddingMessage,
  work: () => Promise<T>,
): Promise<T> {
  const { knowledge_db_id: knowledgeBaseId, username } = message;
  return deps.stores.redis.locks.holdWhenFree(lockKey("knowledge_base", knowledgeBaseId), 30_000, async () => {
    const knowledgeBase = await deps.stores.mongo.knowledgeBases.findSummary(knowledgeBaseId);
    if (!knowledgeBase || knowledgeBase.username !== username)
      throw new PermanentFailure(`the knowledge base ${knowledgeBaseId} was deleted during ingestion`);
    return work();
  });
}

/** LAYRA's `knowledge_bases.files[]` element for a file. */
const fileRef = (meta: LayraFileMeta, createdAt: Date): FileRef => ({
  file_id: meta.file_id,
  filename: meta.original_filename,
  minio_filename: meta.minio_filename,
  minio_url: meta.minio_url,
  created_at: createdAt,
});

interface Attempt {
  pageKeys: string[];
  documentInserted: boolean;
}

/** One try at a file; `attempt` records what it wrote so a failure can remove exactly that. */
async function ingestOnce(
  deps: WorkerDeps,
  message: LayraEmbeddingMessage,
  timestampMs: number,
  attempt: Attempt,
  interrupted: boolean,
): Promise<number> {
  const { stores, config } = deps;
  const { task_id: taskId, username, knowledge_db_id: knowledgeBaseId, file_meta: meta } = message;
  const timings = deps.metrics.ingestStage;
  const timed = async <T>(stage: string, work: () => Promise<T>): Promise<T> => {
    const end = timings.startTimer({ stage });
    try {
      return await work();
    } finally {
      end();
    }
  };

  const original = await timed("s3", async () => {
    // Sized before it is read: no original larger than an upload may be is loaded.
    const bytes = await stores.s3.getObject(meta.minio_filename, config.upload.maxFileBytes).catch((error) => {
      throw error instanceof ObjectTooLarge ? new PermanentFailure(`the original ${error.message}`) : error;
    });
    if (bytes === null) throw new PermanentFailure(`the original ${meta.minio_filename} is not in the bucket`);
    return bytes;
  });
  const pages = await timed("render", () => deps.renderer.render(original, meta.original_filename));
  try {
    const pageCount = pages.pageCount;
    attempt.pageKeys = Array.from({ length: pageCount }, (_, index) =>
      pageObjectKey(username, meta.original_filename, meta.file_id, index, timestampMs),
    );
    await stores.redis.tasks.progress(
      taskId,
      { current_file: meta.original_filename, file_pages_done: 0, file_pages_total: pageCount },
      TASK_TTL_SECONDS,
    );
    await timed("milvus", () =>
      withLiveKnowledgeBase(deps, message, async () => {
        await stores.milvus.createCollection(knowledgeBaseId);
        // Rows of an attempt that was interrupted (a crash, a rebalance) go first; its page objects
        // have the same keys as this attempt's and are overwritten.
        if (interrupted) await stores.milvus.deleteFileRows(knowledgeBaseId, [meta.file_id]);
      }),
    );
    const images: PageImageDoc[] = [];
    // The file's page codes, written to the bucket before its document is, so that a search's first
    // sight of the file finds them there (docs/architecture.md, "Page codes in the bucket").
    const codes = new Map<string, PageCodes>();
    const { dim } = config.milvus;
    const { batchPages } = config.ingest;
    for (let start = 0; start < pageCount; start += batchPages) {
      const indexes = Array.from({ length: Math.min(batchPages, pageCount - start) }, (_, i) => start + i);
      const pngs = await timed("render", () => Promise.all(indexes.map((index) => pages.page(index))));
      const embeddings = await timed("model", () => stores.model.embedImages(pngs, meta.original_filename, start));
      const imageIds = indexes.map(() => `${username}_${randomUUID()}`);
      embeddings.forEach((vectors, i) => codes.set(imageIds[i]!, encodePage(toMatrix(vectors, dim), dim)));
      await timed("milvus", () =>
        withLiveKnowledgeBase(deps, message, () =>
          stores.milvus.insertRows(
            knowledgeBaseId,
            embeddings.flatMap((vectors, i) =>
              vectors.map((vector) => ({
                vector,
                image_id: imageIds[i]!,
                page_number: indexes[i]!, // 0-based in Milvus, as LAYRA
                file_id: meta.file_id,
              })),
            ),
          ),
        ),
      );
      await timed("s3", () =>
        Promise.all(indexes.map((index, i) => stores.s3.putObject(attempt.pageKeys[index]!, pngs[i]!, "image/png"))),
      );
      indexes.forEach((index, i) =>
        images.push({
          images_id: imageIds[i]!,
          minio_filename: attempt.pageKeys[index]!,
          minio_url: stores.s3.presignGet(attempt.pageKeys[index]!),
          page_number: index + 1, // 1-based in Mongo, as LAYRA
        }),
      );
      await stores.redis.tasks.progress(taskId, { file_pages_done: start + indexes.length }, TASK_TTL_SECONDS);
    }
    // Only a shortcut for searches: without it they code the file from Milvus themselves.
    await timed("s3", () =>
      stores.pageCodeObjects
        .write(meta.file_id, codes)
        .catch((error) => deps.logger.warn({ fileId: meta.file_id, err: error }, "page codes not written")),
    );
    const now = new Date();
    // Under the base's lock: a delete that has already removed the base's files documents cannot be
    // followed by this one.
    await timed("mongo", () =>
      withLiveKnowledgeBase(deps, message, async () => {
        attempt.documentInserted = true;
        await stores.mongo.files.insert({
          file_id: meta.file_id,
          filename: meta.original_filename,
          username,
          minio_filename: meta.minio_filename,
          minio_url: meta.minio_url,
          knowledge_db_id: knowledgeBaseId,
          images,
          created_at: now,
          last_modify_at: now,
          is_delete: false,
        });
        if (!(await addFileRefLocked(deps, knowledgeBaseId, fileRef(meta, now))))
          throw new PermanentFailure(`the knowledge base ${knowledgeBaseId} was deleted during ingestion`);
      }),
    );
    return pageCount;
  } finally {
    await pages.dispose();
  }
}

/** Removes what an attempt wrote: its Milvus rows, its page objects, its `files` document. */
async function removeAttempt(deps: WorkerDeps, message: LayraEmbeddingMessage, attempt: Attempt): Promise<void> {
  const { stores } = deps;
  const { knowledge_db_id: knowledgeBaseId, file_meta: meta } = message;
  await stores.milvus.deleteFileRows(knowledgeBaseId, [meta.file_id]);
  await stores.s3.removeObjects([...attempt.pageKeys, pageCodeObjectKey(meta.file_id)]);
  if (attempt.documentInserted) await stores.mongo.files.deleteById(meta.file_id);
}

/** Ingests one file end to end and records its outcome in the task hash; throws only when a store cannot be cleaned up. */
async function ingestFile(deps: WorkerDeps, message: LayraEmbeddingMessage, timestampMs: number): Promise<void> {
  const { stores, config, logger } = deps;
  const { task_id: taskId, file_meta: meta } = message;
  const log = logger.child({ taskId, fileId: meta.file_id });
  await withFileLock(deps, meta.file_id, async () => {
    const finish = (error: string | null) =>
      stores.redis.tasks.finishFile(
        taskId,
        { fileId: meta.file_id, filename: meta.original_filename, error },
        COMPLETED_TEXTS,
      );
    if (await stores.mongo.files.exists(meta.file_id)) {
      // Done before (the offset commit was lost): make sure its ref is in the base, count it once.
      await addFileRefLocked(deps, message.knowledge_db_id, fileRef(meta, new Date()));
      await finish(null);
      deps.metrics.ingestFiles.inc({ outcome: "skipped" });
      log.info("file already ingested: skipped");
      return;
    }
    await stores.redis.tasks.update(taskId, {
      status: "processing",
      message: processingMessage(meta.original_filename),
    });
    const knowledgeBase = await stores.mongo.knowledgeBases.findSummary(message.knowledge_db_id);
    let failure: string | null =
      !knowledgeBase || knowledgeBase.username !== message.username
        ? `knowledge base ${message.knowledge_db_id} not found`
        : null;
    const interrupted =
      failure === null && (await stores.redis.ingestAttempts.begin(meta.file_id, ATTEMPT_MARK_SECONDS));
    for (let tryNumber = 1; failure === null; tryNumber++) {
      const attempt: Attempt = { pageKeys: [], documentInserted: false };
      try {
        const pages = await ingestOnce(deps, message, timestampMs, attempt, interrupted && tryNumber === 1);
        await stores.redis.ingestAttempts.end(meta.file_id);
        await finish(null);
        deps.metrics.ingestFiles.inc({ outcome: "ingested" });
        deps.metrics.ingestPages.inc(pages);
        log.info({ pages }, "file ingested");
        return;
      } catch (error) {
        await removeAttempt(deps, message, attempt);
        // Stopping is no outcome: the uncommitted message goes to another member.
        if (error instanceof RendererStopped) throw error;
        // A store that is down is not the file's fault: spending its attempts on the outage would fail it
        // and delete its original after a few seconds of Mongo or S3 downtime. The whole message is
        // handled again once the store is back (handleUntilDone), as when this cleanup fails. The model
        // server has its own patience (MODEL_RETRY_PATIENCE_MS) and then counts as an attempt.
        const typed = typedError(error);
        if (typed instanceof UpstreamUnavailable && typed.store !== "model") throw typed;
        const permanent = isPermanent(error);
        log.warn({ err: error, tryNumber, permanent }, "file attempt failed");
        if (permanent || tryNumber >= config.ingest.maxAttempts) failure = failureText(error);
        else await sleep(1_000 * tryNumber);
      }
    }
    // Nothing of a failed file stays in any store: its original goes too (LAYRA kept it, unlisted).
    await stores.s3.removeObjects([meta.minio_filename]);
    await stores.redis.ingestAttempts.end(meta.file_id);
    await finish(failure);
    deps.metrics.ingestFiles.inc({ outcome: "failed" });
    log.warn({ reason: failure }, failedMessage(meta.original_filename));
  });
}

/**
 * One message from the topic. Embedding tasks are ingested; anything else (LAYRA's workflow runs
 * carry a `type`, or a value that is not a task) is forwarded unchanged, headers included, to the
 * unhandled-messages topic (its offset is committed after): never silently dropped.
 */
async function handleMessage(deps: WorkerDeps, received: ReceivedMessage): Promise<void> {
  const decoded = decodeTaskMessage(received.value);
  if (decoded.kind === "embedding") {
    await ingestFile(deps, decoded.message, received.timestamp);
  } else {
    const { unhandledTopic } = deps.config.kafka;
    await deps.stores.kafka.produce(
      [
        {
          value: received.value,
          headers: {
            ...received.headers,
            "x-layra-source": `${received.topic}/${received.partition}/${received.offset}`,
          },
        },
      ],
      unhandledTopic,
    );
    const kind = decoded.kind === "unhandled" ? `type ${decoded.type}` : decoded.reason;
    deps.metrics.ingestUnhandled.inc({
      kind:
        decoded.kind === "unhandled" ? (LAYRA_MESSAGE_TYPES.has(decoded.type) ? decoded.type : "other") : "malformed",
    });
    deps.logger.warn(
      { partition: received.partition, offset: String(received.offset), unhandledTopic },
      `message not handled by the ingestion worker (${kind}): forwarded to ${unhandledTopic}`,
    );
  }
}

/** What the worker's /health and /readiness report of its consumer. */
export interface ConsumerState {
  /** A member of the group, fetching or handling a message; false while it rejoins after losing Kafka. */
  consuming: boolean;
}

/** Handles `received` until it is done, retrying while a store is down (never skipping it), or until `signal` aborts. */
async function handleUntilDone(deps: WorkerDeps, received: ReceivedMessage, signal: AbortSignal): Promise<boolean> {
  for (let tryNumber = 1; !signal.aborted; tryNumber++) {
    try {
      await handleMessage(deps, received);
      return true;
    } catch (error) {
      deps.logger.error({ err: error, tryNumber }, "message handling failed; retrying the same message");
      await sleep(Math.min(30_000, 1_000 * tryNumber), undefined, { signal }).catch(() => undefined);
    }
  }
  return false;
}

/**
 * Consumes with one member until it is lost (answers why) or `signal` aborts (answers null). A message
 * in hand when Kafka goes is still finished, since only Kafka is gone; if its offset cannot be committed
 * it is delivered again later and found done (docs/ingestion.md, "Delivery: at least once, processed once").
 */
async function consumeUntilLost(
  deps: WorkerDeps,
  consumer: KafkaConsumerHandle,
  signal: AbortSignal,
): Promise<string | null> {
  try {
    for await (const received of consumer.messages) {
      const done = await handleUntilDone(deps, received, signal);
      if (signal.aborted) return null;
      if (done) {
        try {
          await received.commit();
        } catch (error) {
          return consumer.lost ?? `committing an offset failed: ${errorMessage(error)}`;
        }
      }
      if (consumer.lost) return consumer.lost;
    }
  } catch (error) {
    if (!signal.aborted) return consumer.lost ?? errorMessage(error);
  }
  return signal.aborted ? null : (consumer.lost ?? "the message stream ended");
}

/** The pause before the `tryNumber`th try to rejoin: 1 s, doubling, at most 30 s. */
const rejoinDelayMs = (tryNumber: number) => Math.min(30_000, 1_000 * 2 ** Math.min(tryNumber - 1, 5));

/**
 * Consumes until `signal` aborts. When the member is lost (a broker restart) it is closed and a new one
 * joins the group, with backoff; after KAFKA_RECONNECT_PATIENCE_MS without a member this throws, and the
 * process exits so its supervisor can restart it. `state` tells /health whether a member is consuming.
 */
export async function runWorker(
  deps: WorkerDeps,
  first: KafkaConsumerHandle,
  join: () => Promise<KafkaConsumerHandle>,
  signal: AbortSignal,
  state: ConsumerState,
): Promise<void> {
  const { logger } = deps;
  const { reconnectPatienceMs } = deps.config.kafka;
  let current: KafkaConsumerHandle | null = first;
  // A lost member that could not leave the group yet (the broker was down): closed once it can be.
  let stale: KafkaConsumerHandle | null = null;
  const closeCurrent = () => void current?.close().catch(() => undefined);
  signal.addEventListener("abort", closeCurrent, { once: true });
  try {
    while (current && !signal.aborted) {
      state.consuming = true;
      const lostBecause = await consumeUntilLost(deps, current, signal);
      state.consuming = false;
      if (lostBecause === null) return;
      logger.warn({ reason: lostBecause }, "lost the Kafka consumer; rejoining the group");
      stale = current;
      current = null;
      const lostAt = Date.now();
      for (let tryNumber = 1; current === null && !signal.aborted; tryNumber++) {
        try {
          if (stale) await stale.close();
          stale = null;
          current = await join();
          logger.info({ tryNumber }, "rejoined the consumer group");
        } catch (error) {
          if (Date.now() - lostAt >= reconnectPatienceMs)
            throw new Error(`no Kafka consumer for ${reconnectPatienceMs} ms: ${errorMessage(error)}`, {
              cause: error,
            });
          logger.warn({ err: error, tryNumber }, "rejoining the consumer group failed; trying again");
          await sleep(rejoinDelayMs(tryNumber), undefined, { signal }).catch(() => undefined);
        }
      }
    }
  } finally {
    signal.removeEventListener("abort", closeCurrent);
    state.consuming = false;
    await Promise.allSettled([current?.close(), stale?.close()]);
  }
}

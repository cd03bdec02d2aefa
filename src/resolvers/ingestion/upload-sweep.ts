// Removes the objects of presigned uploads never committed, a bounded batch at a time; a failing store only
// postpones them (docs/ingestion.md, "Uploads that are never committed").
import type { StoreAccess } from "../../context.js";
import type { Logger } from "../../observability/logger.js";
import { runObserved, type Observation } from "../../observability/scope.js";

/** How long after its sweep a late commitUploads is still told UPLOAD_EXPIRED (later: NOT_FOUND). */
const EXPIRED_NOTICE_SECONDS = 24 * 3600;

/** The most batches one maintenance run sweeps (UPLOAD_SWEEP_BATCH uploads each). */
const MAX_DRAIN_BATCHES = 100;

export interface SweepResult {
  /** Uploads this sweep took from the index. */
  claimed: number;
  /** Uploads whose objects it removed and whose entries it ended. */
  uploads: number;
  objects: number;
  /** Uploads it took but left for a later sweep, because `failure.store` failed. */
  postponed: number;
  /** The store that failed and its error code (never a message: a driver message may hold an address). */
  failure: { store: "redis" | "s3"; code: string } | null;
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[A-Za-z_]{1,40}$/.test(code) ? code : "unavailable";
}

/** One bounded sweep; never throws (a store that fails is reported in `failure`). */
export async function sweepExpiredUploads(access: StoreAccess): Promise<SweepResult> {
  const { config, stores } = access;
  const index = stores.redis.pendingUploads;
  const result: SweepResult = { claimed: 0, uploads: 0, objects: 0, postponed: 0, failure: null };
  let claimed;
  try {
    claimed = await index.claimDue(config.uploadSweep.batchSize, config.uploadSweep.claimMs);
  } catch (error) {
    return { ...result, failure: { store: "redis", code: errorCode(error) } };
  }
  result.claimed = claimed.length;
  try {
    // One DeleteObjects request per 1000 keys for the whole batch. Idempotent: keys that were never
    // PUT, or that an overlapping sweeper removed, count as removed.
    await stores.s3.removeObjects(claimed.flatMap((upload) => upload.objectKeys));
  } catch (error) {
    return { ...result, postponed: claimed.length, failure: { store: "s3", code: errorCode(error) } };
  }
  const finished = await Promise.allSettled(
    claimed.map((upload) => index.finishSweep(upload.uploadId, EXPIRED_NOTICE_SECONDS)),
  );
  for (const [position, outcome] of finished.entries()) {
    if (outcome.status === "rejected") {
      result.postponed += 1;
      result.failure = { store: "redis", code: errorCode(outcome.reason) };
    } else if (outcome.value) {
      result.uploads += 1;
      result.objects += claimed[position]!.objectKeys.length;
    }
  }
  return result;
}

/** Sweeps batch after batch until none is full (at most MAX_DRAIN_BATCHES), for the maintenance command. */
export async function drainExpiredUploads(access: StoreAccess): Promise<Omit<SweepResult, "claimed">> {
  const total: Omit<SweepResult, "claimed"> = { uploads: 0, objects: 0, postponed: 0, failure: null };
  for (let batch = 0; batch < MAX_DRAIN_BATCHES; batch += 1) {
    const result = await sweepExpiredUploads(access);
    total.uploads += result.uploads;
    total.objects += result.objects;
    total.postponed += result.postponed;
    total.failure = result.failure;
    if (result.failure || result.claimed < access.config.uploadSweep.batchSize) break;
  }
  return total;
}

/** Counts a sweep in the metrics and logs one line when it did something or a store failed. */
function report(result: SweepResult, observation: Observation, logger: Logger): void {
  observation.metrics.uploadSweepObjectsRemoved.inc(result.objects);
  const { uploads, objects, postponed, failure } = result;
  if (failure) {
    observation.metrics.uploadSweepPostponed.inc({ store: failure.store });
    logger.warn({ uploads, objects, postponed, store: failure.store, code: failure.code }, "upload sweep postponed");
  } else if (uploads > 0) {
    logger.info({ uploads, objects }, "upload sweep removed the objects of uncommitted uploads");
  }
}

/**
 * Sweeps every UPLOAD_SWEEP_INTERVAL_SECONDS in this process (one sweep at a time; the timer never
 * keeps the process alive). Answers a stop function that waits for a sweep in progress.
 */
export function scheduleUploadSweeps(
  access: StoreAccess,
  observation: Observation,
  logger: Logger,
): () => Promise<void> {
  const { intervalMs } = access.config.uploadSweep;
  if (intervalMs === 0) return async () => {};
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const schedule = () => {
    timer = setTimeout(() => {
      running = runObserved(observation, () => sweepExpiredUploads(access)).then((result) => {
        report(result, observation, logger);
        if (!stopped) schedule();
      });
    }, intervalMs);
    timer.unref();
  };
  schedule();
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}

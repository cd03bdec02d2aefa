// What the gateway runs beside requests: LAYRA's Mongo indexes, ensured in the background and
// retried until Mongo answers (start-up never waits on Mongo), and the sweep of presigned uploads
// never committed (docs/ingestion.md; every replica may sweep).
import type { StoreAccess } from "../context.js";
import type { Logger } from "../observability/logger.js";
import type { Observation } from "../observability/scope.js";
import { scheduleUploadSweeps } from "../resolvers/ingestion/upload-sweep.js";

export interface BackgroundJobs {
  /** Resolves once Mongo has every index of INDEX_PLAN; retried with back-off until then. */
  indexesReady: Promise<void>;
  start(): void;
  /** Cancels the index retry and waits for a sweep in progress. */
  stop(): Promise<void>;
}

const FIRST_INDEX_RETRY_MS = 1_000;
const LAST_INDEX_RETRY_MS = 60_000;

export function backgroundJobs(access: StoreAccess, observation: Observation, logger: Logger): BackgroundJobs {
  let indexRetry: NodeJS.Timeout | undefined;
  let stopped = false;
  let stopUploadSweeps = async () => {};
  let markIndexesReady = () => {};
  const indexesReady = new Promise<void>((resolve) => (markIndexesReady = resolve));
  const ensureIndexes = (delayMs: number) => {
    access.stores.mongo.ensureIndexes().then(markIndexesReady, () => {
      if (stopped) return;
      indexRetry = setTimeout(() => ensureIndexes(Math.min(delayMs * 2, LAST_INDEX_RETRY_MS)), delayMs);
      indexRetry.unref();
    });
  };
  return {
    indexesReady,
    start: () => {
      ensureIndexes(FIRST_INDEX_RETRY_MS);
      stopUploadSweeps = scheduleUploadSweeps(access, observation, logger);
    },
    stop: async () => {
      stopped = true;
      clearTimeout(indexRetry);
      await stopUploadSweeps();
    },
  };
}

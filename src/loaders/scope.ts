import type { Viewer } from "../context.js";
import type { ReadSchedule } from "../lib/read-schedule.js";

/** What a loader reads for: the caller, whose documents alone it answers with, and the request's read schedule. */
export interface LoaderScope {
  viewer: Viewer | null;
  loaders: { reads: ReadSchedule };
}

/** One repository read of the caller's documents for a batch of keys. */
export type FindOwned<D> = (username: string, keys: readonly string[]) => Promise<D[]>;

// Stage 0 (knowledge bases, conversations, chatflows, workflows) goes first; then the listed base
// ids `me.files` needs; files last, because a base's refs name its files.
export const LISTED_IDS_STAGE = 1;
export const FILES_STAGE = 2;

/** DataLoader options that send a batch when the read schedule lets `stage` go. */
export const scheduled = (reads: ReadSchedule, stage: number) => ({ batchScheduleFn: reads.batchesOf(stage) });

// Removes the page-code objects of files that no longer exist: files LAYRA deleted (it knows nothing of
// these objects), and the object a warm-up wrote just after a delete removed it. Such an object is never
// read again, so only its bytes are at stake; the sweep runs from `npm run maintenance`
// (docs/operations.md, "Maintenance (cron)").
import type { StoreAccess } from "../context.js";
import { fileIdOfPageCodeKey, PAGE_CODES_PREFIX } from "../stores/page-code-objects.js";

/**
 * Objects younger than this are kept: the worker writes a file's codes before the file's document, and
 * an ingestion is over long before.
 */
export const ORPHAN_MIN_AGE_MS = 24 * 3600 * 1000;
/** Objects listed, and their files looked up, per step: what one step holds in memory. */
const SWEEP_BATCH = 500;

export interface PageCodeSweep {
  /** Objects looked at. */
  checked: number;
  /** Objects removed: old enough, and their file has no document. */
  removed: number;
}

/**
 * One pass over the bucket's page codes in key order, a step at a time (one object per file: a million
 * files take 2,000 steps). A store that fails ends it: what it removed stays removed, and the next run
 * looks again.
 */
export async function sweepOrphanedPageCodes(
  access: StoreAccess,
  minAgeMs = ORPHAN_MIN_AGE_MS,
): Promise<PageCodeSweep> {
  const { s3, mongo } = access.stores;
  const result: PageCodeSweep = { checked: 0, removed: 0 };
  let after = "";
  for (;;) {
    const listed = await s3.listObjects(PAGE_CODES_PREFIX, after, SWEEP_BATCH);
    if (listed.length === 0) return result;
    after = listed.at(-1)!.key;
    result.checked += listed.length;
    const cutoff = Date.now() - minAgeMs;
    const old = listed.flatMap((object) => {
      const fileId = fileIdOfPageCodeKey(object.key);
      return fileId && object.lastModified.getTime() <= cutoff ? [{ key: object.key, fileId }] : [];
    });
    if (old.length === 0) continue;
    const existing = new Set(await mongo.files.existingIds(old.map((object) => object.fileId)));
    const orphans = old.filter((object) => !existing.has(object.fileId)).map((object) => object.key);
    await s3.removeObjects(orphans);
    result.removed += orphans.length;
  }
}

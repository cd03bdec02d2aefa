// For cron: ensure the indexes (LAYRA's plus the workflow_id fixes), delete every user's orphaned
// temporary knowledge bases, remove the objects of presigned uploads never committed and the page codes
// of files that are gone, with the gateway's configuration. Prints one JSON line; exits 1 on failure
// (the next run finishes the job).
//   npm run maintenance
import { loadConfig } from "../config.js";
import { drainExpiredUploads } from "../resolvers/ingestion/upload-sweep.js";
import { cleanupOrphanedTempKnowledgeBases } from "../resolvers/knowledge-bases.js";
import { sweepOrphanedPageCodes } from "../resolvers/page-code-sweep.js";
import { closeStores, createStores } from "../stores/index.js";
import { errorMessage } from "../errors.js";

const config = loadConfig();
const stores = createStores(config);
try {
  await stores.mongo.ensureIndexes();
  const deleted = await cleanupOrphanedTempKnowledgeBases({ config, stores }, null);
  const uploads = await drainExpiredUploads({ config, stores });
  // Only bytes are at stake: a failure is reported beside the rest, and the next run looks again.
  const pageCodes = await sweepOrphanedPageCodes({ config, stores }).catch((error: unknown) => ({
    error: errorMessage(error),
  }));
  console.log(
    JSON.stringify({
      indexes: "ensured",
      orphanedTempKnowledgeBasesDeleted: deleted,
      expiredUploadsSwept: { uploads: uploads.uploads, objects: uploads.objects, postponed: uploads.postponed },
      orphanedPageCodes: pageCodes,
      ...(uploads.failure ? { error: `upload sweep postponed: ${uploads.failure.store} unavailable` } : {}),
    }),
  );
  if (uploads.failure || "error" in pageCodes) process.exitCode = 1;
} catch (error) {
  console.error(
    JSON.stringify({
      error: errorMessage(error),
      remaining: (error as { extensions?: { remaining?: unknown } }).extensions?.remaining,
    }),
  );
  process.exitCode = 1;
} finally {
  await closeStores(stores);
}

// For cron: ensure the indexes (LAYRA's plus the workflow_id fixes) and delete every user's orphaned
// temporary knowledge bases, with the gateway's configuration. Prints one JSON line; exits 1 on failure.
//   npm run maintenance
import { loadConfig } from "../config.js";
import { cleanupOrphanedTempKnowledgeBases } from "../domain/knowledge-bases.js";
import { closeStores, createStores } from "../stores/index.js";

const config = loadConfig();
const stores = createStores(config);
try {
  await stores.mongo.ensureIndexes();
  const deleted = await cleanupOrphanedTempKnowledgeBases({ config, stores }, null);
  console.log(JSON.stringify({ indexes: "ensured", orphanedTempKnowledgeBasesDeleted: deleted }));
} catch (error) {
  console.error(
    JSON.stringify({
      error: error instanceof Error ? error.message : String(error),
      remaining: (error as { extensions?: { remaining?: unknown } }).extensions?.remaining,
    }),
  );
  process.exitCode = 1;
} finally {
  await closeStores(stores);
}

// Backup or restore one knowledge base with a progress bar, using the gateway's configuration
// (the same environment as `npm start` against your stores).
//   npm run kb:backup -- <knowledgeBaseId> <archive.jsonl.gz>
//   npm run kb:restore -- <archive.jsonl.gz>
import { createReadStream, createWriteStream } from "node:fs";
import { loadConfig } from "../config.js";
import { backupKnowledgeBase, restoreKnowledgeBase, type ArchiveProgress } from "../ops/kb-archive.js";
import { closeStores, createStores } from "../stores/index.js";

const bar: ArchiveProgress = (phase, done, total) => {
  const width = 30;
  const filled = total > 0 ? Math.round((done / total) * width) : 0;
  const shown = total > 0 ? `[${"#".repeat(filled)}${" ".repeat(width - filled)}] ${done}/${total}` : `${done}`;
  process.stderr.write(`\r${phase.padEnd(8)} ${shown}   `);
  if (total > 0 && done === total) process.stderr.write("\n");
};

const [command, ...args] = process.argv.slice(2);
const stores = createStores(loadConfig());
try {
  if (command === "backup" && args.length === 2) {
    const counts = await backupKnowledgeBase(stores, args[0]!, createWriteStream(args[1]!), bar);
    console.log(`\nbacked up ${JSON.stringify(counts)} to ${args[1]}`);
  } else if (command === "restore" && args.length === 1) {
    const counts = await restoreKnowledgeBase(stores, createReadStream(args[0]!), bar);
    console.log(`\nrestored ${JSON.stringify(counts)}`);
  } else {
    console.error("usage: kb-archive backup <knowledgeBaseId> <file> | kb-archive restore <file>");
    process.exitCode = 2;
  }
} finally {
  await closeStores(stores);
}

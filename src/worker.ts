// `npm run worker`: the ingestion worker's production entry, a member of the Kafka consumer group
// on LAYRA's task topic (see docs/ingestion.md). Stops cleanly on a signal; exits 1 when it gives up
// on Kafka, so its supervisor restarts it.
import { loadConfigOrExit } from "./config.js";
import { buildWorker } from "./worker-app.js";

const config = loadConfigOrExit();
const worker = buildWorker(config, {
  onFatal: () => void worker.stop().finally(() => process.exit(1)),
});
await worker.start();

const shutdown = async () => {
  await worker.stop();
  process.exit(0);
};
process.once("SIGINT", () => void shutdown());
process.once("SIGTERM", () => void shutdown());

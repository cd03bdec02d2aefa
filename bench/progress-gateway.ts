// Bench child process: the gateway alone (so its memory is its own), driven over IPC by progress-fanout.ts.
import { startBuiltGateway } from "./built-gateway.js";
import { serveProgressBench } from "./progress-child.js";

// Compiled, as production runs it (bench/built-gateway.ts).
const { app, url, token } = await startBuiltGateway();
serveProgressBench({ name: "gateway", url, token, counts: () => app.live.progress.counts(), stop: () => app.stop() });

// Bench child process: the gateway alone (so its memory is its own), driven over IPC by progress-fanout.ts.
import { startBuiltGateway } from "./built-gateway.js";
import { cpuMs } from "./stats.js";
import { startWindowProfile, stopWindowProfile } from "./window-profile.js";

// Compiled, as production runs it (bench/built-gateway.ts).
const { app, url, token } = await startBuiltGateway();

function stats() {
  global.gc?.();
  const memory = process.memoryUsage();
  return {
    rssMb: memory.rss / 2 ** 20,
    heapUsedMb: memory.heapUsed / 2 ** 20,
    counts: app.stores.progress.counts(),
    cpuMs: cpuMs(),
  };
}

process.on("message", async (message: { type: string; dir?: string; name?: string }) => {
  if (message.type === "stats") process.send!({ type: "stats", ...stats() });
  if (message.type === "cpu") process.send!({ type: "cpu", cpuMs: cpuMs() });
  if (message.type === "profile-start") await startWindowProfile();
  if (message.type === "profile-stop") {
    await stopWindowProfile(message.dir!, `gateway-${message.name}`);
    process.send!({ type: "profiled" });
  }
  if (message.type === "stop") {
    await app.stop();
    process.exit(0);
  }
});
process.send!({ type: "ready", url, token });

// What progress-fanout.ts asks of a server child process (the gateway, the bare server) over IPC:
// memory and subscription counts, CPU time, a profile of the measured window, and a stop.
import { cpuMs } from "./stats.js";
import { startWindowProfile, stopWindowProfile } from "./window-profile.js";

export interface ProgressServer {
  /** Names its profile files: `{name}-{level}.cpuprofile`. */
  name: string;
  url: string;
  token: string;
  counts(): { keys: number; listeners: number; mode: string | null };
  stop(): Promise<void>;
}

/** Answers the parent's messages for `server`, then tells it the server is ready. */
export function serveProgressBench(server: ProgressServer): void {
  const stats = () => {
    global.gc?.();
    const memory = process.memoryUsage();
    return {
      rssMb: memory.rss / 2 ** 20,
      heapUsedMb: memory.heapUsed / 2 ** 20,
      counts: server.counts(),
      cpuMs: cpuMs(),
    };
  };
  process.on("message", async (message: { type: string; dir?: string; name?: string }) => {
    if (message.type === "stats") process.send!({ type: "stats", ...stats() });
    if (message.type === "cpu") process.send!({ type: "cpu", cpuMs: cpuMs() });
    if (message.type === "profile-start") await startWindowProfile();
    if (message.type === "profile-stop") {
      await stopWindowProfile(message.dir!, `${server.name}-${message.name}`);
      process.send!({ type: "profiled" });
    }
    if (message.type === "stop") {
      await server.stop();
      process.exit(0);
    }
  });
  process.send!({ type: "ready", url: server.url, token: server.token });
}

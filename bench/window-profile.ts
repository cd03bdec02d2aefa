// A CPU profile of one measured window of a bench child process (not its start-up or set-up), for
// `BENCH_CPU_PROF=dir`: the parent sends "profile-start" and "profile-stop" around the window.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Session } from "node:inspector/promises";

let session: Session | null = null;

export async function startWindowProfile(): Promise<void> {
  session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
}

/** Writes `{dir}/{name}.cpuprofile` (open it in Chrome DevTools or VS Code). */
export async function stopWindowProfile(dir: string, name: string): Promise<void> {
  if (!session) return;
  const { profile } = await session.post("Profiler.stop");
  session.disconnect();
  session = null;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
}

// The renderer's child processes (pdfinfo, pdftoppm, LibreOffice) and their temporary folders: each
// process leads its own process group, so a timeout, a cancel or the worker's stop kills everything it
// started, and folders a killed worker left behind are removed by the next start.
// See docs/ingestion.md, "Rendering bounds".
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

export const FOLDER_PREFIX = "layra-render-";
/** Which process life owns a folder: the pid alone is not enough, a restarted container reuses pid 1. */
const OWNER = `${process.pid}.${Math.round(performance.timeOrigin)}`;
/** Inside a folder: the process group of the renderer running there, for a later start to kill. */
const GROUP_FILE = "renderer.pgid";

/** The process ran past its time limit; its group was killed. */
export class ProcessTimeout extends Error {}

/** The process exited with a failure; `stderr` holds what it said (bounded). */
export class ProcessFailed extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
  }
}

export interface GroupRun {
  timeoutMs: number;
  /** Output kept per stream; past it the process is killed as failed. */
  maxOutputBytes: number;
  /** Aborting kills the group and rejects with the signal's reason. */
  signal: AbortSignal;
  /** The folder the process works in: its group id is recorded there for removeStaleRenderFolders. */
  folder: string;
}

const killGroup = (pgid: number) => {
  try {
    process.kill(-pgid, "SIGKILL");
  } catch {
    // The group is already gone.
  }
};

/**
 * Runs `file` as the leader of a new process group and answers its stdout. Hand-written because
 * execFile's timeout kills only the direct child, not what it started (LibreOffice forks).
 */
export async function runInGroup(file: string, args: string[], options: GroupRun): Promise<string> {
  options.signal.throwIfAborted();
  const child = spawn(file, args, { detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const output = { stdout: "", stderr: "" };
  let overflow = false;
  let timedOut = false;
  const kill = () => child.pid !== undefined && killGroup(child.pid);
  for (const stream of ["stdout", "stderr"] as const)
    child[stream].setEncoding("utf8").on("data", (chunk: string) => {
      if (output[stream].length + chunk.length > options.maxOutputBytes) {
        overflow = true;
        kill();
      } else output[stream] += chunk;
    });
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, options.timeoutMs);
  options.signal.addEventListener("abort", kill, { once: true });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (exitCode) => resolve(exitCode));
  });
  try {
    // Best effort: without the record a later start still removes the folder, only not the orphan.
    if (child.pid !== undefined) await writeFile(join(options.folder, GROUP_FILE), String(child.pid)).catch(() => {});
    const code = await exited;
    options.signal.throwIfAborted();
    if (timedOut) throw new ProcessTimeout(`stopped after ${options.timeoutMs} ms`);
    if (overflow) throw new ProcessFailed(`wrote more than ${options.maxOutputBytes} bytes`, "");
    if (code !== 0) throw new ProcessFailed(`exited with ${code ?? "a signal"}`, output.stderr);
    return output.stdout;
  } finally {
    clearTimeout(timer);
    options.signal.removeEventListener("abort", kill);
    // A leader that exited may leave children in its group (LibreOffice's soffice.bin).
    kill();
  }
}

/** A new temporary folder owned by this process. */
export const createRenderFolder = () => mkdtemp(join(tmpdir(), `${FOLDER_PREFIX}${OWNER}-`));

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
};

/**
 * Removes the folders of renderers whose worker is gone (a SIGKILL skips every clean-up), killing the
 * renderer still running in one. The recorded group is killed only while its leader's command line
 * names the folder, so a reused process id is never hit (without /proc, the folder alone goes).
 */
export async function removeStaleRenderFolders(): Promise<number> {
  const root = tmpdir();
  let removed = 0;
  for (const name of await readdir(root)) {
    const owner = new RegExp(`^${FOLDER_PREFIX}(\\d+)\\.(\\d+)-`).exec(name);
    if (!owner) continue;
    const pid = Number(owner[1]);
    const stale = pid === process.pid ? `${owner[1]}.${owner[2]}` !== OWNER : !isAlive(pid);
    if (!stale) continue;
    const folder = join(root, name);
    const pgid = Number(await readFile(join(folder, GROUP_FILE), "utf8").catch(() => ""));
    if (Number.isInteger(pgid) && pgid > 0) {
      const command = await readFile(`/proc/${pgid}/cmdline`, "utf8").catch(() => "");
      if (command.includes(folder)) killGroup(pgid);
    }
    await rm(folder, { recursive: true, force: true });
    removed++;
  }
  return removed;
}

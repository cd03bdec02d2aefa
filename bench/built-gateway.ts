// The gateway as production runs it: compiled by tsc (`npm run build`, then `node dist/main.js`).
// Bench child processes load the gateway from dist/ rather than through tsx, because tsx's esbuild
// transform keeps function names by wrapping every named function expression in a `__name` call:
// one Object.defineProperty per closure created and a 256-byte property store on each, which the
// compiled code does not pay. Measured at 3,000 progress subscriptions: about 28 such closures,
// 7 KB, of a subscription's 25 KB came from that wrapping alone.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const root = new URL("..", import.meta.url).pathname;

/** Compiles src/ to dist/ (`npm run build`); the bench's parent process runs it once before its children start. */
export function buildGateway(): void {
  execFileSync("npm", ["run", "--silent", "build"], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
}

/** A compiled module of src/ from dist/, typed as its source (`path` relative to src/, with `.js`). */
async function builtModule<T>(path: string): Promise<T> {
  return (await import(pathToFileURL(join(root, "dist", path)).href)) as T;
}

/**
 * For a bench child process: the compiled gateway configured from its environment, listening, and a
 * day-long token of the user "bench".
 */
export async function startBuiltGateway() {
  const { buildApp } = await builtModule<typeof import("../src/app.js")>("app.js");
  const { loadConfig } = await builtModule<typeof import("../src/config.js")>("config.js");
  const { mintToken } = await builtModule<typeof import("../src/resolvers/auth.js")>("resolvers/auth.js");
  const config = loadConfig(process.env);
  const app = buildApp(config);
  const url = await app.start();
  const token = await mintToken(config, app.stores, "bench", 24 * 3600);
  return { app, url, token };
}

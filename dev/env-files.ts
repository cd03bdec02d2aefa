// `.env` files for the development commands. Variables already in the environment always win
// (process.loadEnvFile never overrides), then the files in the order given.
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;

/** The operator's own settings (copied from .env.example). */
export const DOT_ENV = join(root, ".env");
/**
 * Written by `npm start` while it runs the local stack, removed when it stops: the stack's store
 * addresses and secret, so `npm run dev:token` and the operator commands reach the same stores.
 */
export const LOCAL_STACK_ENV = join(root, ".env.local-stack");

export function loadEnvFiles(files: string[]): void {
  for (const file of files) if (existsSync(file)) process.loadEnvFile(file);
}

export function writeLocalStackEnv(env: Record<string, string>): void {
  const lines = Object.entries(env).map(([name, value]) => `${name}=${value}`);
  writeFileSync(
    LOCAL_STACK_ENV,
    `# Written by npm start for the local stack it runs; removed when it stops.\n${lines.join("\n")}\n`,
    {
      mode: 0o600,
    },
  );
}

export function removeLocalStackEnv(): void {
  rmSync(LOCAL_STACK_ENV, { force: true });
}

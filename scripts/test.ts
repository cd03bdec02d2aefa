// `npm test`: installs and starts the local stack once, runs every test file against it with
// node's test runner, then stops the stack. Tests that take a store down start their own servers.
import { execFileSync, spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { LocalStack } from "../dev/stack/stack.js";

const root = new URL("..", import.meta.url).pathname;
execFileSync("bash", [join(root, "dev/stack/install.sh")], { stdio: "inherit" });
const stack = await LocalStack.start();

const requested = process.argv.slice(2);
const files =
  requested.length > 0
    ? requested
    : readdirSync(join(root, "test"), { recursive: true, encoding: "utf8" })
        .filter((file) => file.endsWith(".test.ts"))
        .sort()
        .map((file) => join("test", file));

const runner = spawn(
  process.execPath,
  ["--import", "tsx", "--test", "--test-concurrency=1", "--test-timeout=600000", ...files],
  { cwd: root, stdio: "inherit", env: { ...process.env, LAYRA_TEST_STACK: JSON.stringify(stack.env) } },
);
const code = await new Promise<number>((resolve) => runner.on("exit", (exitCode) => resolve(exitCode ?? 1)));
await stack.close();
process.exit(code);

// `npm test`: installs and starts the local stack once (and installs web/'s packages), runs every test
// file against it with node's test runner, then stops the stack. Tests that take a store down start
// their own servers.
// The Milvus store and search tests then run a second time against the real Milvus engine
// (milvus-lite only reimplements its protocol), started once for them alone;
// LAYRA_TEST_MILVUS_ENGINE=0 skips that second run, =only runs only it.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, normalize } from "node:path";
import { LocalStack } from "../dev/stack/stack.js";

const ENGINE_TESTS = ["test/milvus-store.test.ts", "test/search.test.ts", "test/search-codes.test.ts"];

const root = new URL("..", import.meta.url).pathname;
execFileSync("bash", [join(root, "dev/stack/install.sh")], { stdio: "inherit" });
// The example app's packages (web/ has a lockfile of its own): installed when missing or older than the lock.
const webInstalled = join(root, "web/node_modules/.package-lock.json");
if (
  !existsSync(webInstalled) ||
  statSync(webInstalled).mtimeMs < statSync(join(root, "web/package-lock.json")).mtimeMs
) {
  execFileSync("npm", ["ci", "--prefix", join(root, "web"), "--no-audit", "--no-fund"], { stdio: "inherit" });
}

const requested = process.argv.slice(2);
const files =
  requested.length > 0
    ? requested.map((file) => normalize(file))
    : readdirSync(join(root, "test"), { recursive: true, encoding: "utf8" })
        .filter((file) => file.endsWith(".test.ts"))
        .sort()
        .map((file) => join("test", file));

/**
 * How long one test file (and each test) may run before the runner calls it hung: a guard, not a speed
 * target. search.test's exhaustive checks took 590 s on a 2-core machine running two suites and a bench.
 */
const FILE_TIMEOUT_MS = 1_200_000;

async function run(files: string[], stack: LocalStack, engine: string): Promise<number> {
  const runner = spawn(
    process.execPath,
    ["--import", "tsx", "--test", "--test-concurrency=1", `--test-timeout=${FILE_TIMEOUT_MS}`, ...files],
    {
      cwd: root,
      stdio: "inherit",
      env: { ...process.env, LAYRA_TEST_STACK: JSON.stringify(stack.env), LAYRA_TEST_MILVUS: engine },
    },
  );
  return new Promise<number>((resolve) => runner.on("exit", (exitCode) => resolve(exitCode ?? 1)));
}

const engineOnly = process.env.LAYRA_TEST_MILVUS_ENGINE === "only";
const stack = await LocalStack.start();
let code = engineOnly ? 0 : await run(files, stack, "milvus-lite");
const engineFiles = files.filter((file) => ENGINE_TESTS.includes(file));
if (engineFiles.length > 0 && process.env.LAYRA_TEST_MILVUS_ENGINE !== "0") {
  console.log(`\n# ${engineFiles.join(", ")} again, against the real Milvus engine`);
  await stack.stopServer("milvus");
  try {
    await stack.startServer("milvusEngine");
    code = (await run(engineFiles, stack, "milvus 2.3")) || code;
  } catch (error) {
    console.error(error);
    code ||= 1;
  }
}
await stack.close();
process.exit(code);

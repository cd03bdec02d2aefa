// The production build as it runs in the image: `npm run build` compiles src/ to dist/ with tsc, and
// `node dist/main.js` (no tsx) serves the gateway against real stores, then stops cleanly on SIGTERM.
// The operator commands run from dist/ too. package.json's engines hold for every locked package,
// the example app's in web/ included.
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import semver from "semver";
import { loadConfig } from "../src/config.js";
import { closeStores, createStores } from "../src/stores/index.js";
import { sharedStackEnv, TEST_SECRET, uniqueName } from "./helpers.js";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  engines: { node: string };
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

// web/ (the example app) has a lockfile of its own, held to the same range.
for (const folder of [".", "web"]) {
  test(`engines: every version package.json accepts is accepted by every package locked in ${folder}/`, () => {
    const { engines } = JSON.parse(readFileSync(join(root, folder, "package.json"), "utf8")) as typeof pkg;
    assert.equal(engines.node, pkg.engines.node, "the same Node.js range as the gateway");
    const lock = JSON.parse(readFileSync(join(root, folder, "package-lock.json"), "utf8")) as {
      packages: Record<string, { engines?: { node?: string } }>;
    };
    // semver.subset is slow; many packages share a range.
    const accepts = new Map<string, boolean>();
    const compatible = (range: string) => {
      if (!accepts.has(range)) accepts.set(range, semver.subset(pkg.engines.node, range));
      return accepts.get(range)!;
    };
    const conflicts = Object.entries(lock.packages)
      .filter(([path, entry]) => path !== "" && entry.engines?.node)
      .filter(([, entry]) => !compatible(entry.engines!.node!))
      .map(([path, entry]) => `${path.replace(/^.*node_modules\//, "")} wants ${entry.engines!.node}`);
    assert.deepEqual(conflicts, []);
    assert.ok(semver.satisfies(process.version, pkg.engines.node), `this machine's ${process.version}`);
  });
}

test("development tools are development dependencies only", () => {
  for (const tool of ["tsx", "typescript", "eslint", "prettier"]) {
    assert.ok(!(tool in pkg.dependencies), `${tool} is not a production dependency`);
    assert.ok(tool in pkg.devDependencies, `${tool} is a development dependency`);
  }
  // Production scripts run compiled code with plain node.
  const prod = Object.entries(pkg.scripts).filter(([name]) => name.endsWith(":prod"));
  assert.ok(prod.length >= 4, prod.map(([name]) => name).join(", "));
  for (const [name, script] of prod) assert.match(script, /^node (--\S+ )*dist\/\S+\.js\b/, name);
});

let stack: Awaited<ReturnType<typeof sharedStackEnv>>;
let env: NodeJS.ProcessEnv;

before(async () => {
  stack = await sharedStackEnv();
  env = {
    PATH: process.env.PATH,
    ...stack.env,
    NODE_ENV: "production",
    HOST: "127.0.0.1",
    PORT: "0",
    SECRET_KEY: TEST_SECRET,
    MONGODB_DB: uniqueName("t_"),
    MINIO_BUCKET_NAME: uniqueName("t-"),
    LOG_LEVEL: "info",
  };
  // Readiness needs the bucket; the gateway never creates buckets itself.
  const stores = createStores(loadConfig(env));
  await stores.s3.ensureBucket();
  await closeStores(stores);
  await run("npm", ["run", "build"], { cwd: root });
});
after(() => stack.close());

/** Lines of JSON the process printed so far (pino), and a way to wait for one. */
function jsonLines(child: ChildProcess) {
  const lines: Record<string, unknown>[] = [];
  let buffered = "";
  const waiters: {
    match: (line: Record<string, unknown>) => boolean;
    resolve: (line: Record<string, unknown>) => void;
  }[] = [];
  child.stdout!.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("utf8");
    const complete = buffered.split("\n");
    buffered = complete.pop()!;
    for (const text of complete.filter(Boolean)) {
      const line = JSON.parse(text) as Record<string, unknown>;
      lines.push(line);
      for (const waiter of waiters.filter((w) => w.match(line))) waiter.resolve(line);
    }
  });
  return {
    lines,
    next: (match: (line: Record<string, unknown>) => boolean) =>
      new Promise<Record<string, unknown>>((resolve) => {
        const seen = lines.find(match);
        if (seen) resolve(seen);
        else waiters.push({ match, resolve });
      }),
  };
}

test("npm run build writes dist/main.js and the operator commands", () => {
  for (const file of [
    "dist/main.js",
    "dist/app.js",
    "dist/worker.js",
    "dist/cli/kb-archive.js",
    "dist/cli/maintenance.js",
  ]) {
    assert.ok(existsSync(join(root, file)), file);
  }
  assert.ok(!existsSync(join(root, "dist/test")) && !existsSync(join(root, "dist/dev")), "src/ only");
});

test("node dist/main.js serves /health, /readiness and GraphQL, and exits 0 after SIGTERM", async () => {
  const child = spawn(process.execPath, ["dist/main.js"], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  try {
    const log = jsonLines(child);
    const listening = await Promise.race([
      log.next((line) => line.msg === "LAYRA GraphQL gateway listening"),
      exited.then(({ code }) => assert.fail(`exited with ${code} before listening: ${stderr}`)),
    ]);
    const graphqlUrl = String(listening.url);
    const base = graphqlUrl.replace(/\/graphql$/, "");

    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: "ok" });

    const readiness = await fetch(`${base}/readiness`);
    const report = (await readiness.json()) as { ready: boolean; stores: { name: string; up: boolean }[] };
    assert.equal(readiness.status, 200, JSON.stringify(report));
    assert.equal(report.ready, true);

    const response = await fetch(graphqlUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ __typename }" }),
    });
    const body = (await response.json()) as { data?: { __typename: string }; errors?: unknown[] };
    assert.equal(body.errors, undefined);
    assert.equal(body.data?.__typename, "Query");

    child.kill("SIGTERM");
    const { code, signal } = await exited;
    assert.equal(signal, null);
    assert.equal(code, 0, stderr);
    assert.ok(log.lines.some((line) => line.msg === "stopping" && line.signal === "SIGTERM"));
    assert.ok(log.lines.some((line) => line.msg === "stopped"));
    assert.equal(stderr, "");
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
});

test("the operator command runs from dist/ with plain node (maintenance:prod)", async () => {
  const { stdout } = await run(process.execPath, ["dist/cli/maintenance.js"], { cwd: root, env });
  const result = JSON.parse(stdout.trim().split("\n").at(-1)!) as { indexes: string };
  assert.equal(result.indexes, "ensured");
});

test("a bad configuration stops dist/main.js with exit code 1 and one line per problem", async () => {
  const failure = await run(process.execPath, ["dist/main.js"], {
    cwd: root,
    env: { ...env, SECRET_KEY: "", PORT: "not-a-port" },
  }).then(
    () => assert.fail("started with a bad configuration"),
    (error: { code: number; stderr: string }) => error,
  );
  assert.equal(failure.code, 1);
  assert.match(failure.stderr, /SECRET_KEY/);
  assert.match(failure.stderr, /PORT/);
});

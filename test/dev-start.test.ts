// `npm start` cleans up after itself: a start-up failure is one line and exit code 1 with every
// store server stopped, and SIGINT sent to npm's PID alone (as process managers and IDEs send it)
// stops the gateway and the whole local stack, saying so. With no HOST set it listens on loopback only;
// its JSON logs go to the file it names, not to the terminal.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { networkInterfaces } from "node:os";
import { test } from "node:test";

const root = new URL("..", import.meta.url).pathname;

function npmStart(env: Record<string, string>) {
  const child = spawn("npm", ["start", "--silent"], {
    cwd: root,
    env: { ...process.env, LAYRA_TEST_STACK: "", NODE_ENV: "development", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const printed = (pattern: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const match = stdout.match(pattern);
        if (match) resolve(match);
      };
      child.stdout.on("data", check);
      void exited.then(() => reject(new Error(`exited before ${pattern}: ${stdout} ${stderr}`)));
    });
  return { child, exited, printed, output: () => ({ stdout, stderr }) };
}

const stackRoot = (stdout: string) => /local stack up in (\S+)/.exec(stdout)?.[1];

test("a busy gateway port: one line on stderr, exit code 1, and the local stack stopped", async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
  const port = (blocker.address() as { port: number }).port;
  try {
    const run = npmStart({ PORT: String(port), HOST: "127.0.0.1" });
    assert.equal(await run.exited, 1);
    const { stdout, stderr } = run.output();
    const lines = stderr
      .trim()
      .split("\n")
      .filter((line) => !/^npm (ERR!|error|warn)/.test(line));
    assert.equal(lines.length, 1, stderr);
    assert.match(lines[0]!, /npm start failed: .*EADDRINUSE/);
    const folder = stackRoot(stdout);
    assert.ok(folder, stdout);
    assert.equal(existsSync(folder), false, "the stack's servers were stopped and its folder removed");
  } finally {
    blocker.close();
  }
});

test("SIGINT to npm's PID alone stops the gateway and every store server, and says so", async () => {
  const run = npmStart({ PORT: "0" });
  const [, url] = await run.printed(/LAYRA GraphQL gateway on (http:\/\/\S+)\/graphql/);
  const folder = stackRoot(run.output().stdout)!;
  assert.ok(existsSync(folder));
  const port = new URL(url!).port;
  const outside = Object.values(networkInterfaces())
    .flat()
    .find((address) => address && address.family === "IPv4" && !address.internal)?.address;
  if (outside) {
    await assert.rejects(fetch(`http://${outside}:${port}/health`), `not reachable on ${outside}`);
  }
  const health = await fetch(`${url}/health`);
  assert.equal(health.status, 200, "reachable on loopback");
  // An operation's JSON log line goes to the file the banner names; the terminal keeps human lines only.
  // The banner is printed whole before its first line is seen: the path is in it already.
  const logFile = /logs +(\S+) \(JSON/.exec(run.output().stdout)?.[1];
  assert.ok(logFile, run.output().stdout);
  const answered = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: "query LogProbe { __typename }" }),
  });
  assert.equal(answered.status, 200);
  process.kill(run.child.pid!, "SIGINT"); // npm's own PID, not its process group
  assert.equal(await run.exited, 0);
  const deadline = Date.now() + 30_000;
  while (existsSync(folder) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(existsSync(folder), false, "the stack was closed");
  await assert.rejects(fetch(`${url}/health`), "the gateway no longer listens");
  assert.match(run.output().stdout, /SIGINT: stopping the gateway, the worker and the local stack\n[\s\S]*stopped\n/);
  const logged = readFileSync(logFile, "utf8").split("\n").filter(Boolean);
  assert.ok(
    logged.some((line) => (JSON.parse(line) as { operation?: string }).operation === "LogProbe"),
    logged.slice(-5).join("\n"),
  );
  const jsonOnTerminal = run
    .output()
    .stdout.split("\n")
    .filter((line) => line.startsWith("{"));
  assert.deepEqual(jsonOnTerminal, []);
});

// Dependencies' install scripts are a decision, not a default: each package.json says, in npm's
// `allowScripts`, whether every dependency its lockfile marks as having one may run it. The ones
// here today are refused (sharp and esbuild find their prebuilt binaries in optional packages,
// protobufjs's only checks versions), so a new dependency that brings a script fails this test until
// someone has read it. Pure: the lockfiles are read, nothing is installed.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";

const root = resolve(import.meta.dirname, "..");
const json = (file: string) => JSON.parse(readFileSync(join(root, file), "utf8")) as Record<string, unknown>;

/** Names of the dependencies (not the project itself) the lockfile says have an install script. */
function withInstallScripts(lockfile: string): string[] {
  const packages = json(lockfile).packages as Record<string, { hasInstallScript?: boolean }>;
  return Object.entries(packages)
    .filter(([path, entry]) => path !== "" && entry.hasInstallScript)
    .map(([path]) => path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length));
}

for (const folder of [".", "web"]) {
  test(`${folder === "." ? "the gateway" : "the example app"}: every dependency with an install script has a decision in allowScripts`, () => {
    const allowScripts = (json(join(folder, "package.json")).allowScripts ?? {}) as Record<string, boolean>;
    const scripted = withInstallScripts(join(folder, "package-lock.json"));
    assert.ok(scripted.length > 0, "the lockfile marks no install script: the check would be empty");
    for (const name of scripted)
      assert.equal(typeof allowScripts[name], "boolean", `${name} has an install script and no allowScripts entry`);
    for (const name of Object.keys(allowScripts))
      assert.ok(scripted.includes(name), `allowScripts names ${name}, which has no install script any more`);
  });
}

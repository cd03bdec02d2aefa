// docs/errors.md is the error contract: every extensions.code the gateway emits must be in its
// table. The gateway's own codes are found by scanning src/; the codes that Yoga and graphql-js
// emit are collected by sending the requests that cause them.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { gatewayForFile } from "./helpers.js";

const root = new URL("..", import.meta.url).pathname;
const file = gatewayForFile();

function documentedCodes(): Set<string> {
  const table = readFileSync(join(root, "docs/errors.md"), "utf8");
  return new Set([...table.matchAll(/^\|\s*`([A-Z_]+)`\s*\|/gm)].map((match) => match[1]!));
}

function emittedCodes(): Map<string, string> {
  const found = new Map<string, string>();
  const dir = join(root, "src");
  for (const name of readdirSync(dir, { recursive: true, encoding: "utf8" })) {
    if (!name.endsWith(".ts")) continue;
    const text = readFileSync(join(dir, name), "utf8");
    for (const match of text.matchAll(/\bcode:\s*["']([A-Z][A-Z0-9_]+)["']/g)) found.set(match[1]!, `src/${name}`);
  }
  return found;
}

test("every code in src/ is in docs/errors.md", () => {
  const documented = documentedCodes();
  const emitted = emittedCodes();
  assert.ok(emitted.size >= 10, `the scan found the gateway's codes: ${[...emitted.keys()].join(", ")}`);
  const missing = [...emitted].filter(([code]) => !documented.has(code)).map(([code, where]) => `${code} (${where})`);
  assert.deepEqual(missing, [], "add these to the table in docs/errors.md");
});

test("the codes Yoga and graphql-js answer for malformed requests are in docs/errors.md", async () => {
  const documented = documentedCodes();
  const url = `${file.gateway.url}/graphql`;
  const json = (body: string) => ({ method: "POST", headers: { "content-type": "application/json" }, body });
  const requests: [string, RequestInit, string?][] = [
    ["syntax", json(JSON.stringify({ query: "{ me " }))],
    ["unknown field", json(JSON.stringify({ query: "{ nope }" }))],
    [
      "bad variable",
      json(
        JSON.stringify({ query: "query ($n: Int!) { me { files(first: $n) { totalCount } } }", variables: { n: "x" } }),
      ),
    ],
    ["invalid JSON", json("{")],
    ["no query", json("{}")],
    [
      "mutation over GET",
      { headers: { "x-graphql-csrf": "1" } },
      `?query=${encodeURIComponent("mutation { logout }")}`,
    ],
    ["body too large", json(JSON.stringify({ query: "{ health { ready } }", pad: "x".repeat(2 * 1024 * 1024) }))],
  ];
  for (const [name, init, query = ""] of requests) {
    const body = (await (await fetch(url + query, init)).json()) as { errors?: { extensions?: { code?: string } }[] };
    const code = body.errors?.[0]?.extensions?.code;
    assert.ok(code, `${name}: answered with a code (${JSON.stringify(body)})`);
    assert.ok(documented.has(code), `${name}: ${code} is missing from docs/errors.md`);
  }
});

// The repository explains itself: comments and the README cite only files inside it (docs/ above
// all), every cited docs file and section exists, and the relative links of the Markdown files resolve.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";

const root = resolve(import.meta.dirname, "..");
const TEXT = /\.(ts|js|mjs|go|sh|md|ya?ml|json)$/;

function filesUnder(folder: string): string[] {
  return (
    readdirSync(join(root, folder), { recursive: true, encoding: "utf8" })
      // Installed and generated files (web/'s dist/ and src/gql/) are not ours to word.
      .filter((name) => TEXT.test(name) && !/(^|\/)(node_modules|dist|gql)(\/|$)/.test(name))
      .map((name) => join(root, folder, name))
  );
}

const rootFiles = readdirSync(root).filter((name) =>
  /^(README\.md|Dockerfile|docker-compose.*\.ya?ml|\.env.*\.example|tsconfig.*\.json|package\.json)$/.test(name),
);
const sources = [
  ...["src", "test", "dev", "bench", "scripts", ".ci", "web"].flatMap(filesUnder),
  join(root, ".ci/run"),
  ...rootFiles.map((name) => join(root, name)),
];
const docs = existsSync(join(root, "docs")) ? filesUnder("docs").filter((file) => file.endsWith(".md")) : [];

// Built from parts so this file does not match itself.
const OUTSIDE = new RegExp(
  [
    "decision [0-9]",
    "\u00a7",
    "\\.\\./shared",
    "DESIGN\\.md",
    "STYLE\\.md",
    "(?<!docs/)layra-contract\\.md",
    "contract " + "\u00a7",
  ].join("|"),
);

test("comments, the README and the deployment files cite nothing outside the repository", () => {
  const hits = sources.flatMap((file) =>
    readFileSync(file, "utf8")
      .split("\n")
      .flatMap((line, index) => (OUTSIDE.test(line) ? [`${relative(root, file)}:${index + 1}: ${line.trim()}`] : [])),
  );
  assert.deepEqual(hits, []);
});

/** The headings of a Markdown file, without the leading hashes. */
const headingsOf = (file: string) =>
  readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => /^#{1,6} /.test(line))
    .map((line) => line.replace(/^#+ /, "").trim());

test('every cited docs file exists, and so does every cited section (docs/<file>.md, "Section")', () => {
  const problems: string[] = [];
  let citations = 0;
  for (const file of [...sources, ...docs]) {
    const text = readFileSync(file, "utf8");
    for (const match of text.matchAll(/docs\/([a-z0-9-]+\.md)(?:, "([^"]+)")?/g)) {
      citations++;
      const cited = join(root, "docs", match[1]!);
      if (!existsSync(cited)) {
        problems.push(`${relative(root, file)} cites docs/${match[1]}, which does not exist`);
        continue;
      }
      // A section name may wrap onto the next comment line.
      const section = match[2]?.replace(/\s*\n\s*(\/\/|\*)?\s*/g, " ");
      if (section && !headingsOf(cited).includes(section))
        problems.push(`${relative(root, file)} cites docs/${match[1]}, "${section}", which has no such heading`);
    }
  }
  assert.ok(citations > 20, `found ${citations} citations`);
  assert.deepEqual(problems, []);
});

test("relative links in README.md and docs/ resolve to files in the repository", () => {
  const broken: string[] = [];
  for (const file of [join(root, "README.md"), ...docs]) {
    for (const match of readFileSync(file, "utf8").matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1]!.split("#")[0]!;
      if (target === "" || /^[a-z]+:/.test(target)) continue;
      const path = resolve(dirname(file), target);
      if (!path.startsWith(root + "/") || !existsSync(path)) broken.push(`${relative(root, file)} -> ${match[1]}`);
    }
  }
  assert.deepEqual(broken, []);
});

// The production code stands alone: nothing under src/ imports the development folder, the test
// or benchmark code, or the scripts, and every package it loads at run time is a production
// dependency (so `npm ci --omit=dev` is enough to run dist/). Import specifiers are read from the
// TypeScript syntax tree: static imports, re-exports, `import()` and `require()`.
import assert from "node:assert/strict";
import { builtinModules } from "node:module";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import ts from "typescript";

const root = resolve(import.meta.dirname, "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
};

interface ImportSite {
  file: string;
  specifier: string | null; // null: a computed `import(expr)` nobody can check
  typeOnly: boolean;
}

function importsOf(file: string): ImportSite[] {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
  const sites: ImportSite[] = [];
  const literal = (node: ts.Node | undefined) => (node && ts.isStringLiteralLike(node) ? node.text : null);
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node)) {
      sites.push({ file, specifier: literal(node.moduleSpecifier), typeOnly: !!node.importClause?.isTypeOnly });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      sites.push({ file, specifier: literal(node.moduleSpecifier), typeOnly: node.isTypeOnly });
    } else if (ts.isImportTypeNode(node)) {
      sites.push({ file, specifier: literal((node.argument as ts.LiteralTypeNode).literal), typeOnly: true });
    } else if (ts.isCallExpression(node)) {
      const isDynamicImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === "require";
      if (isDynamicImport || isRequire) sites.push({ file, specifier: literal(node.arguments[0]), typeOnly: false });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return sites;
}

const srcFiles = readdirSync(join(root, "src"), { recursive: true, encoding: "utf8" })
  .filter((name) => /\.(ts|mts|cts|js|mjs)$/.test(name))
  .map((name) => join(root, "src", name));
const sites = srcFiles.flatMap(importsOf);

/** The npm package a bare specifier names: `a/b` -> `a`, `@s/a/b` -> `@s/a`. */
const packageOf = (specifier: string) =>
  specifier
    .split("/")
    .slice(0, specifier.startsWith("@") ? 2 : 1)
    .join("/");
const isBuiltin = (specifier: string) =>
  specifier.startsWith("node:") || builtinModules.includes(specifier.split("/")[0]!);

test("the import reader sees static, re-exported, dynamic and required specifiers", () => {
  assert.ok(srcFiles.length > 40, `found ${srcFiles.length} source files`);
  assert.ok(sites.length > 200, `found ${sites.length} imports`);
  assert.ok(sites.some((site) => site.specifier === "./app.js" && site.file.endsWith("main.ts")));
});

test("every import in src/ is a literal specifier", () => {
  const computed = sites.filter((site) => site.specifier === null).map((site) => relative(root, site.file));
  assert.deepEqual(computed, []);
});

test("nothing under src/ imports dev/, test/, scripts/, bench/ or anything else outside src/", () => {
  const outside = sites
    .filter((site) => site.specifier?.startsWith("."))
    .map((site) => ({
      from: relative(root, site.file),
      to: relative(root, resolve(dirname(site.file), site.specifier!)),
    }))
    .filter(({ to }) => !to.startsWith(`src/`));
  assert.deepEqual(outside, []);
});

test("every package src/ loads at run time is a production dependency (tsx, typescript and the like are not)", () => {
  const missing = sites
    .filter((site) => !site.typeOnly && site.specifier && !site.specifier.startsWith(".") && !isBuiltin(site.specifier))
    .map((site) => ({ from: relative(root, site.file), package: packageOf(site.specifier!) }))
    .filter((site) => !(site.package in pkg.dependencies));
  assert.deepEqual(missing, []);
});

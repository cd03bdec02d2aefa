import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { printSchemaFile } from "../src/schema/print.js";

test("schema.graphql is the SDL printed from the Pothos schema (run `npm run schema:print`)", () => {
  const committed = readFileSync(new URL("../schema.graphql", import.meta.url), "utf8");
  assert.equal(committed, printSchemaFile());
});

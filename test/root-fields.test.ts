// The root fields an operation selects (src/lib/root-fields.ts), which traces record and the
// subscription plugin uses to find a field's extensions. Pure: documents are parsed here.
import assert from "node:assert/strict";
import { test } from "node:test";
import { getOperationAST, parse } from "graphql";
import { rootFieldNames } from "../src/lib/root-fields.js";

const namesOf = (source: string) => {
  const document = parse(source);
  return rootFieldNames(document, getOperationAST(document)!);
};

test("root fields by name, not alias, in order, through inline fragments and spreads at any depth", () => {
  assert.deepEqual(namesOf("{ health me { username } }"), ["health", "me"]);
  assert.deepEqual(namesOf("{ status: health }"), ["health"]);
  assert.deepEqual(namesOf("{ health ... on Query { ... on Query { me { username } } } }"), ["health", "me"]);
  assert.deepEqual(
    namesOf('subscription { ...Progress } fragment Progress on Subscription { taskProgress(taskId: "t") { status } }'),
    ["taskProgress"],
  );
  assert.deepEqual(
    namesOf("query { ...A health } fragment A on Query { ...B } fragment B on Query { me { username } }"),
    ["me", "health"],
  );
});

test("a fragment spread twice, or a cycle validation would refuse, is walked once", () => {
  assert.deepEqual(namesOf("{ ...A ...A } fragment A on Query { health }"), ["health"]);
  assert.deepEqual(namesOf("{ ...A } fragment A on Query { health ...B } fragment B on Query { ...A }"), ["health"]);
});

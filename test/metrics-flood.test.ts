// /metrics cannot be flooded through operation names: only operations that validated get their own
// label, names are bounded in length, and an address sending invalid documents is rate-limited
// like any other caller.
import assert from "node:assert/strict";
import { test } from "node:test";
import { gatewaysForFile } from "./helpers.js";

const gateway = gatewaysForFile();

test("invalid documents with long distinct names neither grow /metrics nor use up real names", async () => {
  const gw = await gateway({});
  const size = async () => (await (await fetch(`${gw.url}/metrics`)).text()).length;
  await gw.query("query Warm { __typename }");
  const before = await size();
  for (let i = 0; i < 600; i++) {
    const name = `Junk${i}_${"x".repeat(2000)}`;
    const response = await gw.query(`query ${name} { nope }`);
    assert.equal(response.errors?.[0]?.extensions?.code, "GRAPHQL_VALIDATION_FAILED");
  }
  const after = await size();
  assert.ok(after - before < 20_000, `/metrics grew by ${after - before} bytes`);
  await gw.query("query RealOperation { __typename }");
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  assert.match(text, /operation="RealOperation"/, "a real name still gets its own label");
  assert.match(text, /operation="invalid"/);
  await gw.query(`query ${"L".repeat(65)} { __typename }`);
  assert.doesNotMatch(await (await fetch(`${gw.url}/metrics`)).text(), /L{65}/, "names over 64 characters are `other`");
});

test("an address past its limit of invalid documents is refused (429) before parsing, over HTTP and graphql-ws", async () => {
  const gw = await gateway({ RATE_LIMIT_ANONYMOUS_POINTS: "5" });
  for (let i = 0; i < 6; i++) await gw.query("{ nope }");
  const refused = await fetch(`${gw.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: "{ __typename }" }),
  });
  assert.equal(refused.status, 429);
  const body = (await refused.json()) as { errors: { extensions: { code: string } }[] };
  assert.equal(body.errors[0]!.extensions.code, "RATE_LIMITED");
  const { wsOperation } = await import("./ws.js");
  const overWs = await wsOperation(gw.url, { query: "{ __typename }" });
  assert.equal(overWs.errors?.[0]?.extensions?.code, "RATE_LIMITED", JSON.stringify(overWs));
});

// CSRF prevention, GET and mutations, introspection / GraphiQL / field suggestions by mode, and
// persisted operations.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { gatewaysForFile, type TestGateway } from "./helpers.js";
import { wsOperation } from "./ws.js";

const gateway = gatewaysForFile();

type Body = {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
};
const introspection = "{ __schema { queryType { name } } }";
const typo = "{ healht { ready } }";

describe("development/test mode", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway({});
  });

  test("a GET query runs when it carries the CSRF header, and is refused (403) without it", async () => {
    const url = `${gw.url}/graphql?query=${encodeURIComponent("{ __typename }")}`;
    const refused = await fetch(url);
    assert.equal(refused.status, 403);
    assert.match(((await refused.json()) as Body).errors![0]!.message, /CSRF/);
    const allowed = await fetch(url, { headers: { "x-graphql-csrf": "1" } });
    assert.equal(allowed.status, 200);
    assert.deepEqual(((await allowed.json()) as Body).data, { __typename: "Query" });
  });

  test("a POST that a browser could send without preflight (text/plain, form) is refused; JSON runs", async () => {
    for (const contentType of ["text/plain", "application/x-www-form-urlencoded"]) {
      const response = await fetch(`${gw.url}/graphql`, {
        method: "POST",
        headers: { "content-type": contentType },
        body:
          contentType === "text/plain"
            ? JSON.stringify({ query: "{ __typename }" })
            : `query=${encodeURIComponent("{ __typename }")}`,
      });
      assert.equal(response.status, 403, contentType);
    }
    const json = await gw.query("{ __typename }");
    assert.deepEqual(json.data, { __typename: "Query" });
  });

  test("a mutation over GET is refused with 405", async () => {
    const url = `${gw.url}/graphql?query=${encodeURIComponent("mutation { __typename }")}`;
    const response = await fetch(url, { headers: { "x-graphql-csrf": "1" } });
    assert.equal(response.status, 405);
    assert.match(((await response.json()) as Body).errors![0]!.message, /mutation operation from a POST request/);
  });

  test("introspection, GraphiQL and field suggestions are on", async () => {
    assert.deepEqual((await gw.query(introspection)).data, { __schema: { queryType: { name: "Query" } } });
    const overWs = await wsOperation(gw.url, { query: introspection });
    assert.deepEqual(overWs.results[0]?.data, { __schema: { queryType: { name: "Query" } } });
    assert.match((await gw.query(typo)).errors![0]!.message, /Did you mean "health"\?/);
    const page = await fetch(`${gw.url}/graphql`, { headers: { accept: "text/html" } });
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /text\/html/);
    assert.match(await page.text(), /graphiql/i);
  });
});

describe("production mode", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway({ NODE_ENV: "production", LOG_LEVEL: "silent" });
  });

  test("introspection is refused over HTTP and graphql-ws", async () => {
    const overHttp = await gw.query(introspection);
    assert.equal(overHttp.data, undefined);
    assert.match(overHttp.errors![0]!.message, /introspection has been disabled/);
    const overWs = await wsOperation(gw.url, { query: introspection });
    assert.equal(overWs.results.length, 0);
    assert.match(overWs.errors![0]!.message, /introspection has been disabled/);
  });

  test("field suggestions are hidden", async () => {
    const message = (await gw.query(typo)).errors![0]!.message;
    assert.match(message, /Cannot query field "healht" on type "Query"/);
    assert.doesNotMatch(message, /Did you mean|health"/);
  });

  test("GraphiQL is not served", async () => {
    const page = await fetch(`${gw.url}/graphql`, { headers: { accept: "text/html" } });
    assert.doesNotMatch(page.headers.get("content-type") ?? "", /text\/html/);
    assert.doesNotMatch(await page.text(), /graphiql/i);
  });

  test("ordinary operations still run", async () => {
    assert.deepEqual((await gw.query("{ __typename }")).data, { __typename: "Query" });
  });
});

describe("persisted operations", () => {
  let gw: TestGateway;
  let dir: string;
  const listed = "query Ready { health { ready } }";
  const listedWs = "query Typename { __typename }";
  const sha = (query: string) => createHash("sha256").update(query).digest("hex");
  const persisted = (hash: string) => ({ persistedQuery: { version: 1, sha256Hash: hash } });
  const post = async (body: Record<string, unknown>) => {
    const response = await fetch(`${gw.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: response.status, ...((await response.json()) as Body) };
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "persisted-"));
    const file = join(dir, "manifest.json");
    await writeFile(file, JSON.stringify({ [sha(listed)]: listed, [sha(listedWs)]: listedWs }));
    gw = await gateway({ PERSISTED_OPERATIONS_FILE: file });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("over HTTP a listed operation runs by its hash (POST and GET); anything else is refused", async () => {
    const ran = await post({ extensions: persisted(sha(listed)) });
    assert.equal(ran.errors, undefined, JSON.stringify(ran.errors));
    assert.equal(typeof (ran.data!.health as { ready: boolean }).ready, "boolean");

    const get = await fetch(
      `${gw.url}/graphql?extensions=${encodeURIComponent(JSON.stringify(persisted(sha(listedWs))))}`,
      {
        headers: { "x-graphql-csrf": "1" },
      },
    );
    assert.deepEqual(((await get.json()) as Body).data, { __typename: "Query" });

    const arbitrary = await post({ query: "{ __typename }" });
    assert.equal(arbitrary.errors![0]!.extensions?.code, "PERSISTED_QUERY_ONLY");
    assert.equal(arbitrary.data, undefined);
    const unknown = await post({ extensions: persisted(sha("{ __typename }")) });
    assert.equal(unknown.errors![0]!.extensions?.code, "PERSISTED_QUERY_NOT_FOUND");
    // Even the text of a listed operation is refused over HTTP: clients send the hash.
    assert.equal((await post({ query: listed })).errors![0]!.extensions?.code, "PERSISTED_QUERY_ONLY");
    // A hash with a query text is the code docs/errors.md lists for it, even when the text is the listed one.
    for (const query of [listed, "{ __typename }"]) {
      const both = await post({ query, extensions: persisted(sha(listed)) });
      assert.equal(both.status, 400);
      assert.equal(both.data, undefined);
      assert.equal(both.errors![0]!.extensions?.code, "CANNOT_SEND_PQ_ID_AND_BODY", JSON.stringify(both));
    }
  });

  test("over graphql-ws a listed operation runs by hash or by its exact text; anything else is refused", async () => {
    const byHash = await wsOperation(gw.url, { query: "", extensions: persisted(sha(listedWs)) });
    assert.deepEqual(byHash.results[0]?.data, { __typename: "Query" });
    const byText = await wsOperation(gw.url, { query: listedWs });
    assert.deepEqual(byText.results[0]?.data, { __typename: "Query" });
    const arbitrary = await wsOperation(gw.url, { query: "{ __typename }" });
    assert.equal(arbitrary.results.length, 0);
    assert.equal(arbitrary.errors![0]!.extensions?.code, "PERSISTED_QUERY_ONLY");
    const unknown = await wsOperation(gw.url, { query: "", extensions: persisted("0".repeat(64)) });
    assert.equal(unknown.errors![0]!.extensions?.code, "PERSISTED_QUERY_NOT_FOUND");
    const both = await wsOperation(gw.url, { query: "{ __typename }", extensions: persisted(sha(listedWs)) });
    assert.equal(both.results.length, 0);
    assert.equal(both.errors![0]!.extensions?.code, "CANNOT_SEND_PQ_ID_AND_BODY");
  });
});

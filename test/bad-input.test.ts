// Input the API never issued or cannot store is a typed BAD_USER_INPUT naming the argument, never an
// INTERNAL_SERVER_ERROR: NUL in names and keys, 1e400 in JSON, cursors the API did not issue (or with
// huge offsets), 1e308 query vectors, and global ids naming no node type.
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { LayraWriter } from "../dev/layra-writer.js";
import { encodeGlobalId } from "../src/schema/global-id.js";
import { gatewayForFile, type GraphQLResponse, type TestGateway } from "./helpers.js";

const file = gatewayForFile({ SEARCH_MAX_QUERY_CHARS: "200", SEARCH_MAX_QUERY_VECTORS: "8" });
let gw: TestGateway;
let token: string;
let kbId: string;
type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

before(async () => {
  gw = await file.ready;
  token = await gw.token("eve");
  const writer = new LayraWriter(gw.app.stores, gw.config.model.url);
  const kb = await writer.createKnowledgeBase("eve", "Eve's");
  kbId = kb.knowledge_base_id;
  for (const name of ["a.pdf", "b.pdf"])
    await writer.ingestFile("eve", kbId, { filename: name, pages: [{ text: "x" }] });
});

const codesOf = (response: GraphQLResponse<unknown>) => (response.errors ?? []).map((e) => e.extensions?.code);

function assertBadInput(response: GraphQLResponse<unknown>, label: string): void {
  assert.ok(response.errors?.length, `${label}: an error`);
  assert.deepEqual([...new Set(codesOf(response))], ["BAD_USER_INPUT"], `${label}: ${JSON.stringify(response.errors)}`);
}

test("NUL and control characters in custom-node names and JSON keys", async () => {
  const save = "mutation($n: String!, $d: JSON!) { saveCustomNode(name: $n, definition: $d) { name } }";
  assertBadInput(await gw.query(save, { token, variables: { n: "a\u0000b", d: {} } }), "NUL name");
  assertBadInput(await gw.query(save, { token, variables: { n: "ok", d: { "k\u0000": 1 } } }), "NUL key");
  assertBadInput(await gw.query(save, { token, variables: { n: "ok", d: { nested: { "\u0001": 1 } } } }), "ctrl key");
});

test("1e400 in a JSON scalar, as a literal and as a variable", async () => {
  const literal = 'mutation { saveCustomNode(name: "big", definition: { x: 1e400 }) { name } }';
  assertBadInput(await gw.query(literal, { token }), "literal");
  const response = await fetch(`${gw.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: '{"query":"mutation($d: JSON!) { saveCustomNode(name: \\"big\\", definition: $d) { name } }","variables":{"d":{"x":1e400}}}',
  });
  assertBadInput((await response.json()) as GraphQLResponse<unknown>, "variable");
});

test("cursors are parsed strictly: only what the API issued, with sane offsets", async () => {
  const query = `query($id: String!, $after: String) { knowledgeBase(knowledgeBaseId: $id) { files(first: 1, after: $after) { edges { cursor } } } }`;
  const issued = await gw.query<{ knowledgeBase: Json }>(query, { token, variables: { id: kbId } });
  assert.equal(issued.errors, undefined);
  const cursor = issued.data!.knowledgeBase.files.edges[0].cursor as string;
  const next = await gw.query(query, { token, variables: { id: kbId, after: cursor } });
  assert.equal(next.errors, undefined, "an issued cursor works");
  const forged = (offset: string) => Buffer.from(`OffsetConnection:${offset}`).toString("base64");
  for (const after of [
    forged("1e300"),
    forged("0x10"),
    forged(" 1"),
    forged("01"),
    forged("99999999999"),
    forged("-1"),
  ]) {
    const response = await gw.query(query, { token, variables: { id: kbId, after } });
    assertBadInput(response, after);
    assert.equal(response.errors![0]!.extensions?.argument, "after");
  }
  const pages = `query($id: String!) { knowledgeBase(knowledgeBaseId: $id) { files { edges { node { pages(offset: 2000000) { pageNumber } } } } } }`;
  assertBadInput(await gw.query(pages, { token, variables: { id: kbId } }), "page offset");
});

test("query vectors of 1e308 are refused before Milvus (their scores would be -Infinity)", async () => {
  const vector = Array.from({ length: gw.config.milvus.dim }, () => 1e308);
  const response = await gw.query(
    "query($id: String!, $v: [[Float!]!]) { searchKnowledgeBase(knowledgeBaseId: $id, queryVectors: $v) { score } }",
    { token, variables: { id: kbId, v: [vector] } },
  );
  assertBadInput(response, "1e308");
});

test("node(id) with a User: or __proto__: global id is BAD_USER_INPUT; in nodes it fails its own item only", async () => {
  const kbNode = encodeGlobalId("KnowledgeBase", kbId);
  for (const typename of ["User", "__proto__", "constructor", "Query"]) {
    const bad = encodeGlobalId(typename, "eve_x");
    const one = await gw.query("query($id: ID!) { node(id: $id) { id } }", { token, variables: { id: bad } });
    assertBadInput(one, typename);
    const many = await gw.query<{ nodes: Json[] }>("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {
      token,
      variables: { ids: [bad, kbNode] },
    });
    assert.deepEqual(many.data?.nodes, [null, { id: kbNode }], JSON.stringify(many));
    assert.deepEqual(codesOf(many), ["BAD_USER_INPUT"]);
    assert.deepEqual(many.errors![0]!.path, ["nodes", 0]);
  }
});

test("a text query is bounded before Milvus: its length, then the token vectors it embeds to", async () => {
  const search = "query($id: String!, $q: String!) { searchKnowledgeBase(knowledgeBaseId: $id, query: $q) { score } }";
  const long = await gw.query(search, { token, variables: { id: kbId, q: "word ".repeat(41).trim() } });
  assertBadInput(long, "201 characters");
  assert.match(long.errors![0]!.message, /at most 200 characters/);
  const many = await gw.query(search, { token, variables: { id: kbId, q: "a b c d e f g h i j k l" } });
  assertBadInput(many, "12 tokens");
  assert.match(many.errors![0]!.message, /token vectors; at most 8/);
  const few = await gw.query(search, { token, variables: { id: kbId, q: "x" } });
  assert.equal(few.errors, undefined, JSON.stringify(few.errors));
});

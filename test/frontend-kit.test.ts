// The frontend kit in web/: GraphQL Code Generator turns the app's operations into typed documents
// against the committed schema.graphql and the app type-checks with them, so a schema change that
// breaks the app fails here; the persisted-documents manifest it emits is accepted by the gateway's
// persisted mode as is, answering the app's operations by hash over HTTP and graphql-ws.
import assert from "node:assert/strict";
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Redis } from "ioredis";
import { taskId, uploadSteps, writeAll } from "./fixtures/layra-task-writer.js";
import { generateAndTypecheck, inWeb, MANIFEST, manifestHashes, WEB } from "./fixtures/web-app.js";
import { redisClient, sharedStackEnv, startGateway, type GraphQLResponse, type TestGateway } from "./helpers.js";
import { wsOperation } from "./ws.js";

const root = new URL("..", import.meta.url).pathname;
const OPERATIONS = [
  "Profile",
  "Library",
  "FilePages",
  "CreateKnowledgeBase",
  "UploadFiles",
  "TaskProgress",
  "Search",
  "Conversations",
  "Ask",
  "StopAnswer",
];

before(async () => {
  await generateAndTypecheck();
});

test("codegen writes a typed document and a manifest entry for each of the app's operations", async () => {
  const operations = await readFile(join(WEB, "src/operations.graphql"), "utf8");
  const names = [...operations.matchAll(/^(?:query|mutation|subscription) (\w+)/gm)].map((match) => match[1]);
  assert.deepEqual(names.sort(), [...OPERATIONS].sort());
  assert.deepEqual([...manifestHashes().keys()].sort(), [...OPERATIONS].sort());
  for (const hash of manifestHashes().values()) assert.match(hash, /^sha256:[0-9a-f]{64}$/);
  const generated = await readFile(join(WEB, "src/gql/graphql.ts"), "utf8");
  for (const name of OPERATIONS) assert.match(generated, new RegExp(`export const ${name}Document = `));
});

describe("a schema change that breaks the app's operations fails", () => {
  let copy: string;
  const schema = readFile(join(root, "schema.graphql"), "utf8");

  /** web/ in a temporary folder beside a changed schema.graphql, as ../schema.graphql is for web/. */
  before(async () => {
    copy = await mkdtemp(join(tmpdir(), "layra-web-"));
    await mkdir(join(copy, "web"));
    for (const entry of ["codegen.ts", "tsconfig.json", "vite.config.ts", "src"]) {
      await cp(join(WEB, entry), join(copy, "web", entry), { recursive: true });
    }
    await rm(join(copy, "web/src/gql"), { recursive: true, force: true });
    await symlink(join(WEB, "node_modules"), join(copy, "web/node_modules"));
  });
  after(() => rm(copy, { recursive: true, force: true }));

  /** schema.graphql with one line of a type's block replaced. */
  async function changedSchema(type: string, from: string, to: string): Promise<string> {
    const text = await schema;
    const start = text.indexOf(`\ntype ${type} `);
    const at = text.indexOf(from, start);
    assert.ok(start >= 0 && at > start && at < text.indexOf("\n}", start), `${type} has ${from.trim()}`);
    return text.slice(0, at) + to + text.slice(at + from.length);
  }

  async function generateAgainst(changed: string) {
    await writeFile(join(copy, "schema.graphql"), changed);
    const web = join(copy, "web");
    return inWeb("npx", ["graphql-codegen", "--config", "codegen.ts"], web).then(() =>
      inWeb("npx", ["tsc", "--noEmit"], web),
    );
  }

  test("the unchanged schema passes in the copy (the copy itself is sound)", async () => {
    await generateAgainst(await schema);
  });

  test("a field the app selects is removed: codegen refuses the document", async () => {
    const failure = await generateAgainst(await changedSchema("File", "  pageCount: Int!\n", "")).then(
      () => assert.fail("codegen accepted an operation selecting a removed field"),
      (error: { stdout: string; stderr: string }) => error,
    );
    assert.match(failure.stdout + failure.stderr, /Cannot query field "pageCount" on type "File"/);
  });

  test("a field the app uses changes type: the app no longer type-checks", async () => {
    const failure = await generateAgainst(await changedSchema("SearchHit", "  score: Float!", "  score: String!")).then(
      () => assert.fail("the app type-checked with a score that is a string"),
      (error: { stdout: string; stderr: string }) => error,
    );
    assert.match(failure.stdout + failure.stderr, /src\/main\.ts.*toFixed/);
  });
});

describe("the gateway in persisted mode with the generated manifest as is", () => {
  let shared: Awaited<ReturnType<typeof sharedStackEnv>>;
  let gateway: TestGateway;
  let token: string;
  let taskDb: Redis;
  const USER = "kituser";

  before(async () => {
    shared = await sharedStackEnv();
    gateway = await startGateway(shared.env, { PERSISTED_OPERATIONS_FILE: MANIFEST });
    token = await gateway.token(USER);
    taskDb = redisClient(gateway.config, "task");
  });
  after(async () => {
    taskDb?.disconnect();
    await gateway?.close();
    await shared?.close();
  });

  const hash = (name: string) => manifestHashes().get(name)!;
  async function post<T>(body: Record<string, unknown>): Promise<GraphQLResponse<T>> {
    const response = await fetch(`${gateway.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    return { status: response.status, ...((await response.json()) as object) };
  }

  test("over HTTP the app's operations run by documentId, as web/src/api.ts sends them", async () => {
    const profile = await post<{ me: { username: string } }>({ documentId: hash("Profile"), variables: {} });
    assert.equal(profile.errors, undefined);
    assert.equal(profile.data?.me.username, USER);

    const created = await post<{ createKnowledgeBase: { knowledgeBaseId: string } }>({
      documentId: hash("CreateKnowledgeBase"),
      variables: { name: "kit" },
    });
    assert.equal(created.errors, undefined);
    const id = created.data!.createKnowledgeBase.knowledgeBaseId;

    const library = await post<{ me: { knowledgeBases: { edges: { node: { knowledgeBaseId: string } }[] } } }>({
      documentId: hash("Library"),
      variables: { thumbnails: 2 },
    });
    assert.equal(library.errors, undefined);
    assert.deepEqual(
      library.data!.me.knowledgeBases.edges.map((edge) => edge.node.knowledgeBaseId),
      [id],
    );
  });

  test("over graphql-ws the TaskProgress subscription runs by documentId with an empty query", async () => {
    const id = taskId(USER);
    await writeAll(uploadSteps(taskDb, id, [{ name: "a.pdf" }]));
    const outcome = await wsOperation(
      gateway.url,
      { query: "", documentId: hash("TaskProgress"), variables: { taskId: id } } as never,
      { Authorization: `Bearer ${token}` },
    );
    assert.equal(outcome.errors, undefined, JSON.stringify(outcome.errors));
    assert.equal(outcome.closed, undefined);
    for (const result of outcome.results) assert.equal(result.errors, undefined);
    const last = outcome.results.at(-1)?.data as { taskProgress: { status: string; percent: number } };
    assert.equal(last.taskProgress.status, "completed");
    assert.equal(last.taskProgress.percent, 100);
  });

  test("a document that is not in the manifest is refused on both transports", async () => {
    const unlisted = await post({ query: "query Profile { me { username } }" });
    assert.equal(unlisted.errors?.[0]?.extensions?.code, "PERSISTED_QUERY_ONLY");
    assert.equal(unlisted.data, undefined);
    const unknown = await post({ documentId: `sha256:${"0".repeat(64)}`, variables: {} });
    assert.equal(unknown.errors?.[0]?.extensions?.code, "PERSISTED_QUERY_NOT_FOUND");

    const connection = { Authorization: `Bearer ${token}` };
    const wsUnlisted = await wsOperation(gateway.url, { query: "{ me { username } }" }, connection);
    assert.equal(wsUnlisted.errors?.[0]?.extensions?.code, "PERSISTED_QUERY_ONLY");
    assert.deepEqual(wsUnlisted.results, []);
    const wsUnknown = await wsOperation(
      gateway.url,
      { query: "", documentId: `sha256:${"0".repeat(64)}` } as never,
      connection,
    );
    assert.equal(wsUnknown.errors?.[0]?.extensions?.code, "PERSISTED_QUERY_NOT_FOUND");
  });
});

// What the uploads put in S3 and how it is served, on the real local servers (versitygw checks
// signatures): the stored and served content types are the gateway's, never the client's; a
// presigned PUT URL cannot change a committed original; a timed-out PUT leaves nothing behind;
// names that no object key can hold, and one multipart part sent as several files, are refused.
import assert from "node:assert/strict";
import { createServer, connect, type Server, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { before, describe, test } from "node:test";
import { eventually, gatewayForFile, startGateway } from "./helpers.js";
import {
  createTopic,
  ingestOverrides,
  multipartRequest,
  samplePdf,
  samplePng,
  UPLOAD_FILES,
  type UploadTaskResult,
} from "./ingest-helpers.js";

const overrides = ingestOverrides();
const state = gatewayForFile(overrides);
let token: string;
let knowledgeBaseId: string;

const CREATE_URLS = `mutation($id: String!, $files: [UploadFileInput!]!) {
  createUploadUrls(knowledgeBaseId: $id, files: $files) { uploadId files { filename url } } }`;
const COMMIT = `mutation($uploadId: String!) { commitUploads(uploadId: $uploadId) { taskId files { id filename url } } }`;
/** HTML that runs a script, then a PDF header further on (a renderer that looks past the start still reads it). */
const HTML_PDF = Buffer.from("<html><script>alert(document.domain)</script></html>\n%PDF-1.4\n%%EOF\n");

before(async () => {
  const gateway = await state.ready;
  await createTopic(gateway.config, 1);
  token = await gateway.token("ann");
  const created = await gateway.query<{ createKnowledgeBase: { knowledgeBaseId: string } }>(
    `mutation { createKnowledgeBase(name: "objects") { knowledgeBaseId } }`,
    { token },
  );
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  knowledgeBaseId = created.data!.createKnowledgeBase.knowledgeBaseId;
});

/** The object key a presigned GET URL reads. */
const keyOfUrl = (url: string) => decodeURIComponent(new URL(url).pathname.split("/")[2]!);

async function objectsStartingWith(prefix: string): Promise<string[]> {
  const { s3 } = state.gateway.app.stores;
  const names: string[] = [];
  for await (const item of s3.client.listObjectsV2(s3.bucket, prefix, true)) names.push(String(item.name));
  return names;
}

async function upload(files: { name: string; type: string; bytes: Buffer }[]) {
  return multipartRequest<{ uploadFiles: UploadTaskResult }>(
    state.gateway,
    token,
    UPLOAD_FILES,
    { knowledgeBaseId },
    files,
  );
}

async function presign(files: { filename: string; contentType: string; size: number }[]) {
  const created = await state.gateway.query<{
    createUploadUrls: { uploadId: string; files: { filename: string; url: string }[] };
  }>(CREATE_URLS, { variables: { id: knowledgeBaseId, files }, token });
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  return created.data!.createUploadUrls;
}

async function commit(uploadId: string) {
  const committed = await state.gateway.query<{ commitUploads: UploadTaskResult }>(COMMIT, {
    variables: { uploadId },
    token,
  });
  assert.equal(committed.errors, undefined, JSON.stringify(committed.errors));
  return committed.data!.commitUploads;
}

describe("content types are the gateway's", () => {
  test("a multipart part sent as text/html is stored by what its bytes are, and served as a download", async () => {
    const uploaded = await upload([
      { name: "evil.pdf", type: "text/html", bytes: HTML_PDF },
      { name: "photo.png", type: "text/html", bytes: samplePng() },
    ]);
    assert.equal(uploaded.errors, undefined, JSON.stringify(uploaded.errors));
    const [evil, photo] = uploaded.data!.uploadFiles.files;
    const { s3 } = state.gateway.app.stores;
    assert.equal(await s3.contentType(keyOfUrl(evil!.url)), "application/octet-stream");
    assert.equal(await s3.contentType(keyOfUrl(photo!.url)), "image/png");

    const served = await fetch(evil!.url);
    assert.equal(served.status, 200);
    assert.equal(served.headers.get("content-disposition"), "attachment");
    assert.equal(served.headers.get("content-type"), "application/pdf");
    assert.equal(Buffer.from(await served.arrayBuffer()).toString(), HTML_PDF.toString());
    const image = await fetch(photo!.url);
    assert.equal(image.headers.get("content-type"), "image/png");
    assert.equal(image.headers.get("content-disposition"), "inline");
    await image.arrayBuffer();
  });

  test("a presigned PUT must send the declared type; headers it adds are not kept on the committed original", async () => {
    const urls = await presign([{ filename: "evil.pdf", contentType: "text/html", size: HTML_PDF.length }]);
    const url = urls.files[0]!.url;
    const otherType = await fetch(url, {
      method: "PUT",
      headers: { "content-type": "image/svg+xml" },
      body: new Uint8Array(HTML_PDF),
    });
    assert.equal(otherType.status, 403, "a Content-Type other than the declared one is refused");
    await otherType.arrayBuffer();
    const put = await fetch(url, {
      method: "PUT",
      headers: {
        "content-type": "text/html",
        "cache-control": "public, max-age=31536000",
        "content-disposition": "inline",
      },
      body: new Uint8Array(HTML_PDF),
    });
    assert.equal(put.status, 200);
    await put.arrayBuffer();
    const task = await commit(urls.uploadId);
    const key = keyOfUrl(task.files[0]!.url);
    const { s3 } = state.gateway.app.stores;
    const stat = await s3.client.statObject(s3.bucket, key);
    assert.equal(stat.metaData["content-type"], "application/octet-stream");
    assert.equal(stat.metaData["cache-control"], undefined);
    assert.equal(stat.metaData["content-disposition"], undefined);
    const served = await fetch(task.files[0]!.url);
    assert.equal(served.headers.get("content-disposition"), "attachment");
    assert.notEqual(served.headers.get("cache-control"), "public, max-age=31536000");
    await served.arrayBuffer();
  });
});

describe("a committed original cannot be changed through its PUT URL", () => {
  test("after the commit a larger body is refused and a same-size one does not reach the original", async () => {
    const pdf = await samplePdf(["committed"]);
    const urls = await presign([{ filename: "fixed.pdf", contentType: "application/pdf", size: pdf.length }]);
    const url = urls.files[0]!.url;
    const put = (body: Buffer) =>
      fetch(url, { method: "PUT", headers: { "content-type": "application/pdf" }, body: new Uint8Array(body) });
    const first = await put(pdf);
    assert.equal(first.status, 200);
    await first.arrayBuffer();
    const task = await commit(urls.uploadId);
    const key = keyOfUrl(task.files[0]!.url);

    const larger = await put(Buffer.alloc(pdf.length * 50, 0x41));
    assert.equal(larger.status, 403, "the URL signs the declared length");
    await larger.arrayBuffer();
    const swapped = await put(Buffer.alloc(pdf.length, 0x3c));
    await swapped.arrayBuffer();
    const { s3 } = state.gateway.app.stores;
    assert.deepEqual(await s3.getObject(key), pdf, "the committed original is the committed bytes");
    assert.equal(await s3.contentType(key), "application/pdf");
  });
});

describe("names and parts", () => {
  test("names no object key can hold, or that would not read back as their key, are BAD_USER_INPUT", async () => {
    const before = await objectsStartingWith("");
    for (const [name, message] of [
      [`${"a".repeat(250)}.pdf`, /has a name of 254 bytes: at most 226 fit the store's object keys/],
      ["a%41.pdf", /has a percent escape/],
      ["invoice\u202Efdp.exe.pdf", /bidirectional formatting character/],
      ["v1..2.pdf", /has "\.\." in its name/],
    ] as const) {
      const refused = await upload([{ name, type: "application/pdf", bytes: HTML_PDF }]);
      assert.equal(refused.errors?.[0]?.extensions?.code, "BAD_USER_INPUT", `${name}: ${JSON.stringify(refused)}`);
      assert.match(refused.errors[0].message, message);
      const presigned = await state.gateway.query(CREATE_URLS, {
        variables: { id: knowledgeBaseId, files: [{ filename: name, contentType: "application/pdf", size: 5 }] },
        token,
      });
      assert.equal(presigned.errors?.[0]?.extensions?.code, "BAD_USER_INPUT", name);
    }
    assert.deepEqual(await objectsStartingWith(""), before, "nothing was stored");
  });

  test("the longest accepted name is stored and its URL works", async () => {
    // "ann_" + name base + "_" + 24-digit ObjectId + ".pdf" = 255 bytes.
    const name = `${"é".repeat(111)}.pdf`;
    const uploaded = await upload([{ name, type: "application/pdf", bytes: HTML_PDF }]);
    assert.equal(uploaded.errors, undefined, JSON.stringify(uploaded.errors));
    const served = await fetch(uploaded.data!.uploadFiles.files[0]!.url);
    assert.equal(served.status, 200);
    assert.equal(Buffer.from(await served.arrayBuffer()).toString(), HTML_PDF.toString());
  });

  test("one multipart part mapped to several variables is BAD_USER_INPUT and stores nothing", async () => {
    const before = await objectsStartingWith("");
    const form = new FormData();
    form.append(
      "operations",
      JSON.stringify({ query: UPLOAD_FILES, variables: { knowledgeBaseId, files: [null, null, null] } }),
    );
    form.append("map", JSON.stringify({ 0: ["variables.files.0", "variables.files.1", "variables.files.2"] }));
    form.append("0", new Blob([new Uint8Array(samplePng())], { type: "image/png" }), "once.png");
    const response = await fetch(`${state.gateway.url}/graphql`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "x-graphql-csrf": "1" },
      body: form,
    });
    const answer = (await response.json()) as { errors?: { message: string; extensions: { code: string } }[] };
    assert.equal(answer.errors?.[0]?.extensions.code, "BAD_USER_INPUT", JSON.stringify(answer));
    assert.match(answer.errors[0].message, /files\[1\].*same multipart part as files\[0\]/);
    assert.deepEqual(await objectsStartingWith(""), before);
  });
});

/**
 * A TCP proxy to S3 that passes PUT bodies slowly (a slow or overloaded store) and records, per
 * connection that carried a PUT, whether the store answered and whether the connection closed.
 */
async function slowPutProxy(target: URL) {
  const puts: { answered: boolean; closed: boolean }[] = [];
  const server: Server = createServer((client: Socket) => {
    const upstream = connect(Number(target.port), target.hostname);
    let put: { answered: boolean; closed: boolean } | null = null;
    const close = () => {
      if (put) put.closed = true;
      client.destroy();
      upstream.destroy();
    };
    client.on("data", (chunk: Buffer) => {
      if (!put && chunk.subarray(0, 4).toString() === "PUT ") puts.push((put = { answered: false, closed: false }));
      if (!put) {
        upstream.write(chunk);
        return;
      }
      client.pause();
      void (async () => {
        for (let offset = 0; offset < chunk.length && !upstream.destroyed; offset += 16 * 1024) {
          upstream.write(chunk.subarray(offset, offset + 16 * 1024));
          await sleep(20);
        }
        client.resume();
      })();
    });
    upstream.on("data", (chunk: Buffer) => {
      if (put) put.answered = true;
      client.write(chunk);
    });
    for (const socket of [client, upstream]) {
      socket.on("close", close);
      socket.on("error", close);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    puts,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

describe("a PUT that times out", () => {
  test("is aborted: the upload fails UPSTREAM_UNAVAILABLE and its original never appears", async () => {
    const proxy = await slowPutProxy(state.gateway.config.s3.endpoint);
    const slow = await startGateway(state.env, {
      ...overrides,
      MONGODB_DB: state.gateway.config.mongo.database,
      MINIO_BUCKET_NAME: state.gateway.config.s3.bucket,
      MINIO_URL: proxy.url,
      STORE_TIMEOUT_MS: "1000",
    });
    try {
      // About 5 s through the proxy: well past the 1 s store timeout.
      const big = Buffer.concat([Buffer.from("%PDF-1.4\n"), Buffer.alloc(4 * 1024 * 1024, 0x20)]);
      const failed = await multipartRequest(slow, await slow.token("ann"), UPLOAD_FILES, { knowledgeBaseId }, [
        { name: "slowfile.pdf", type: "application/pdf", bytes: big },
      ]);
      assert.equal(failed.errors?.[0]?.extensions?.code, "UPSTREAM_UNAVAILABLE", JSON.stringify(failed));
      assert.equal(failed.errors[0].extensions.store, "s3");
      await eventually(
        () => proxy.puts.length > 0 && proxy.puts.every((put) => put.closed || put.answered),
        "every PUT through the proxy ended (closed, or answered by the store)",
        60_000,
      );
      assert.ok(
        proxy.puts.every((put) => !put.answered),
        "the store never answered the PUT: it was aborted",
      );
      assert.deepEqual(await objectsStartingWith("ann_slowfile_"), [], "no original stays");
    } finally {
      await slow.close();
      await proxy.close();
    }
  });
});

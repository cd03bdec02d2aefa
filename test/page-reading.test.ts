// The local model server reads pages (dev/stack/model-server.ts): a rendered page's words get the
// same token vectors /embed_text gives them, so on the local stack a PDF uploaded through
// uploadFiles and ingested by a real worker is found by the words its pages show, each topic's
// query ranking its own page first.
import assert from "node:assert/strict";
import { test } from "node:test";
import { documentPdf } from "../dev/pdf.js";
import { createRenderer } from "../src/resolvers/ingestion/page-renderer.js";
import { TOPIC_PAGES, TOPICS } from "./fixtures/topic-pages.js";
import { eventually, gatewayForFile, testConfig } from "./helpers.js";
import {
  createTopic,
  ingestOverrides,
  multipartRequest,
  startWorkers,
  UPLOAD_FILES,
  type UploadTaskResult,
} from "./ingest-helpers.js";

// LAYRA's default rendering (200 DPI), not the other ingestion tests' 24 DPI: pages a person can read.
const overrides = ingestOverrides({ EMBEDDING_IMAGE_DPI: "200" });
const state = gatewayForFile(overrides);

type Hit = { score: number; page: { pageNumber: number }; file: { filename: string } };

async function embed(path: string, body: FormData | string): Promise<Response> {
  return fetch(`${state.env.MODEL_SERVER_URL}${path}`, {
    method: "POST",
    body,
    ...(typeof body === "string" ? { headers: { "content-type": "application/json" } } : {}),
  });
}

test("/embed_image reads a rendered page: each word it shows has the vector /embed_text gives that word", async () => {
  const renderer = createRenderer(testConfig(state.env, overrides));
  const rendered = await renderer.render(await documentPdf("notes.pdf", TOPIC_PAGES.slice(0, 2)), "notes.pdf");
  const images = await Promise.all([0, 1].map((index) => rendered.page(index)));
  await rendered.dispose();
  const form = new FormData();
  images.forEach((image, i) =>
    form.append("images", new Blob([new Uint8Array(image)], { type: "image/png" }), `p_${i}.png`),
  );
  const response = await embed("/embed_image", form);
  assert.equal(response.status, 200);
  const { embeddings } = (await response.json()) as { embeddings: number[][][] };
  assert.equal(embeddings.length, 2);
  const words = await embed("/embed_text", JSON.stringify({ queries: ["penguins", "lighthouse"] }));
  const [[penguins], [lighthouse]] = ((await words.json()) as { embeddings: number[][][] }).embeddings as [
    number[][],
    number[][],
  ];
  const shows = (page: number[][], word: number[]) => page.some((vector) => vector.every((x, k) => x === word[k]));
  for (const page of embeddings) for (const vector of page) assert.equal(vector.length, 128);
  assert.ok(shows(embeddings[0]!, penguins!) && !shows(embeddings[0]!, lighthouse!), "page 1 shows penguins only");
  assert.ok(shows(embeddings[1]!, lighthouse!) && !shows(embeddings[1]!, penguins!), "page 2 shows lighthouse only");
});

test("/embed_image refuses bytes that are not an image with a 422 naming the image", async () => {
  const form = new FormData();
  form.append("images", new Blob([new Uint8Array(Buffer.from("not a picture"))], { type: "image/png" }), "x.png");
  const response = await embed("/embed_image", form);
  assert.equal(response.status, 422);
  assert.match(((await response.json()) as { detail: string }).detail, /image 0 is not an image/);
});

test("a multi-page PDF uploaded through uploadFiles and ingested by the worker: each topic's query finds its page first", async () => {
  const { gateway } = state;
  await createTopic(gateway.config, 1);
  const stopWorkers = await startWorkers(gateway, state.env, overrides);
  try {
    const token = await gateway.token("reader");
    const created = await gateway.query<{ createKnowledgeBase: { knowledgeBaseId: string } }>(
      `mutation { createKnowledgeBase(name: "field notes") { knowledgeBaseId } }`,
      { token },
    );
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
    const knowledgeBaseId = created.data!.createKnowledgeBase.knowledgeBaseId;
    const pdf = await documentPdf("topics.pdf", TOPIC_PAGES);
    const uploaded = await multipartRequest<{ uploadFiles: UploadTaskResult }>(
      gateway,
      token,
      UPLOAD_FILES,
      { knowledgeBaseId },
      [{ name: "topics.pdf", type: "application/pdf", bytes: pdf }],
    );
    assert.equal(uploaded.errors, undefined, JSON.stringify(uploaded.errors));
    const pageCount = `query($id: String!) { knowledgeBase(knowledgeBaseId: $id) { files(first: 5) { edges { node { pageCount } } } } }`;
    await eventually(
      async () => {
        const listed = await gateway.query<{ knowledgeBase: { files: { edges: { node: { pageCount: number } }[] } } }>(
          pageCount,
          { variables: { id: knowledgeBaseId }, token },
        );
        assert.equal(listed.errors, undefined, JSON.stringify(listed.errors));
        return listed.data!.knowledgeBase.files.edges[0]?.node.pageCount === TOPICS.length;
      },
      "the worker published topics.pdf with its four pages",
      180_000,
    );

    const search = `query($id: String!, $query: String!) { searchKnowledgeBase(knowledgeBaseId: $id, query: $query, topK: 4) {
      score page { pageNumber } file { filename } } }`;
    for (const [index, topic] of TOPICS.entries()) {
      const result = await gateway.query<{ searchKnowledgeBase: Hit[] }>(search, {
        variables: { id: knowledgeBaseId, query: topic.query },
        token,
      });
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      const hits = result.data!.searchKnowledgeBase;
      const ranking = hits.map((hit) => `${hit.page.pageNumber}:${hit.score.toFixed(2)}`).join(" ");
      assert.equal(hits[0]?.page.pageNumber, index + 1, `"${topic.query}" ranked ${ranking}`);
      assert.equal(hits[0]?.file.filename, "topics.pdf");
      assert.ok(hits.length > 1 && hits[0].score > hits[1]!.score, `"${topic.query}" ranked ${ranking}`);
    }
  } finally {
    await stopWorkers();
  }
});

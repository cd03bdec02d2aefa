// searchKnowledgeBase(s) (docs/architecture.md, "Exact two-stage search"): check the input before
// any I/O, check ownership, embed the text, then per knowledge base one batched Milvus search for
// candidate pages, every vector of those pages, exact MaxSim here; merge, threshold, topK, and one
// batch of file metadata.
import type { Context } from "../context.js";
import { BadUserInput, UpstreamUnavailable } from "../errors.js";
import type { FileDoc, KnowledgeBaseDoc, PageImageDoc } from "../stores/documents.js";
import { MaxSimScores, toMatrix } from "../lib/maxsim.js";
import { ownDocument } from "./user-graph.js";

export interface SearchArgs {
  knowledgeBaseIds: readonly string[];
  query?: string | null;
  queryVectors?: readonly (readonly number[])[] | null;
  topK: number;
  scoreThreshold?: number | null;
}

export interface SearchHit {
  score: number;
  image: PageImageDoc;
  file: FileDoc;
  knowledgeBase: KnowledgeBaseDoc;
}

interface ScoredPage {
  knowledgeBase: KnowledgeBaseDoc;
  imageId: string;
  score: number;
}

export async function searchKnowledgeBases(context: Context, args: SearchArgs): Promise<SearchHit[]> {
  checkArgs(context, args);
  const knowledgeBaseIds = [...new Set(args.knowledgeBaseIds)];
  // One batched owner-filtered lookup; another user's base is NOT_FOUND like a missing one.
  const knowledgeBases = await Promise.all(
    knowledgeBaseIds.map((id) => ownDocument(context, "knowledgeBase", "knowledge base", id)),
  );
  const queryVectors =
    args.query != null ? await embedQuery(context, args.query) : args.queryVectors!.map((vector) => [...vector]);
  const query = toMatrix(queryVectors, context.config.milvus.dim);

  const scored = (await Promise.all(knowledgeBases.map((kb) => scorePages(context, kb, queryVectors, query)))).flat();
  const threshold = args.scoreThreshold ?? -Infinity;
  const ranked = scored
    .filter((page) => page.score >= threshold)
    // Ties are broken by page id, then base id, so equal scores always come back in one order.
    .sort(
      (a, b) =>
        b.score - a.score ||
        compare(a.imageId, b.imageId) ||
        compare(a.knowledgeBase.knowledge_base_id, b.knowledgeBase.knowledge_base_id),
    );

  // LAYRA writes Milvus before Mongo: a page without its document yet is left out, never deleted,
  // since deleting it (as LAYRA's RAG path does) races with the ingestion still writing it. The
  // next-best pages take its place, one more batched lookup per window that had such pages.
  const hits: SearchHit[] = [];
  for (let start = 0; start < ranked.length && hits.length < args.topK; start += args.topK) {
    const window = ranked.slice(start, start + args.topK);
    const files = await context.loaders.fileByImage.loadMany(window.map((page) => page.imageId));
    window.forEach((page, i) => {
      const file = files[i];
      if (!file || file instanceof Error || file.knowledge_db_id !== page.knowledgeBase.knowledge_base_id) return;
      const image = file.images.find((candidate) => candidate.images_id === page.imageId);
      if (image && hits.length < args.topK)
        hits.push({ score: page.score, image, file, knowledgeBase: page.knowledgeBase });
    });
  }
  return hits;
}

async function scorePages(
  context: Context,
  knowledgeBase: KnowledgeBaseDoc,
  queryVectors: number[][],
  query: Float32Array,
): Promise<ScoredPage[]> {
  const { milvus } = context.stores;
  const { dim } = context.config.milvus;
  const id = knowledgeBase.knowledge_base_id;
  // A base nothing was ingested into yet has no collection: no hits, not an error.
  if (!(await milvus.readyForSearch(id))) return [];
  const candidates = await milvus.candidates(id, queryVectors, context.config.search.candidateLimit);
  const scores = new MaxSimScores(query, dim);
  for await (const rows of milvus.pageVectors(id, candidates))
    scores.add(
      rows.map((row) => row.image_id),
      toMatrix(
        rows.map((row) => row.vector),
        dim,
      ),
    );
  return [...scores.scores()].map(([imageId, score]) => ({ knowledgeBase, imageId, score }));
}

async function embedQuery(context: Context, text: string): Promise<number[][]> {
  const vectors = await context.stores.model.embedText(text);
  const { dim } = context.config.milvus;
  // A text embeds to one vector per token: bounded before Milvus, like queryVectors.
  const { maxQueryVectors } = context.config.search;
  if (vectors.length > maxQueryVectors)
    throw new BadUserInput(
      "query",
      `embeds to ${vectors.length} token vectors; at most ${maxQueryVectors} are searched`,
    );
  if (vectors.length === 0 || !vectors.every((vector) => isVector(vector, dim))) {
    throw new UpstreamUnavailable("model", `/embed_text answered something other than ${dim}-d vectors`);
  }
  return vectors;
}

function checkArgs(context: Context, args: SearchArgs): void {
  const { dim } = context.config.milvus;
  const { maxTopK, maxQueryVectors, maxQueryChars } = context.config.search;
  if (args.knowledgeBaseIds.length === 0)
    throw new BadUserInput("knowledgeBaseIds", "give at least one knowledge base id");
  if (!Number.isInteger(args.topK) || args.topK < 1 || args.topK > maxTopK)
    throw new BadUserInput("topK", `must be between 1 and ${maxTopK}`);
  if (args.scoreThreshold != null && !Number.isFinite(args.scoreThreshold))
    throw new BadUserInput("scoreThreshold", "must be a finite number");
  if ((args.query == null) === (args.queryVectors == null))
    throw new BadUserInput("query", "give exactly one of query and queryVectors");
  if (args.query != null && args.query.trim() === "") throw new BadUserInput("query", "must not be empty");
  if (args.query != null && args.query.length > maxQueryChars)
    throw new BadUserInput("query", `must be at most ${maxQueryChars} characters, got ${args.query.length}`);
  if (args.queryVectors != null) {
    const vectors = args.queryVectors;
    if (vectors.length === 0 || vectors.length > maxQueryVectors)
      throw new BadUserInput("queryVectors", `give 1 to ${maxQueryVectors} vectors`);
    const bad = vectors.findIndex((vector) => !isVector(vector, dim));
    if (bad !== -1)
      throw new BadUserInput(
        "queryVectors",
        `vector ${bad} must have ${dim} numbers of magnitude at most ${MAX_COMPONENT}`,
      );
  }
}

/**
 * The largest component magnitude a query vector may have: ColQwen's vectors are L2-normalised,
 * and this keeps every MaxSim sum finite (1e308 components overflow float32 and the scores to -Infinity).
 */
const MAX_COMPONENT = 1e6;

const isVector = (vector: unknown, dim: number): vector is number[] =>
  Array.isArray(vector) &&
  vector.length === dim &&
  vector.every((value) => typeof value === "number" && Math.abs(value) <= MAX_COMPONENT);

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

// searchKnowledgeBase(s): input and ownership checked before any I/O, then exact MaxSim per base over the cached
// pages or one batched Milvus search's candidates (docs/performance.md, "Search: the page-vector cache").
import type { Context } from "../context.js";
import { BadUserInput, UpstreamUnavailable } from "../errors.js";
import type { FileDoc, KnowledgeBaseDoc, PageImageDoc } from "../stores/documents.js";
import { MaxSimScores, toMatrix } from "../lib/maxsim.js";
import type { PageVectorCache } from "../lib/page-vector-cache.js";
import { ownDocument } from "./owned-reads.js";

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

/** A base is searched in memory only when its pages fit in this share of the cache budget. */
const IN_MEMORY_SHARE = 0.5;
/** At most this many uncached pages are read on the spot; past it the base is warmed in the background. */
const IN_MEMORY_MAX_MISSING = 16;
/** Vectors per page assumed before any page is cached (ColQwen2.5 caps a page at 768 image tokens). */
const ASSUMED_VECTORS_PER_PAGE = 1024;

async function scorePages(
  context: Context,
  knowledgeBase: KnowledgeBaseDoc,
  queryVectors: number[][],
  query: Float32Array,
): Promise<ScoredPage[]> {
  const { milvus } = context.stores;
  const { dim } = context.config.milvus;
  const id = knowledgeBase.knowledge_base_id;
  const cache = milvus.pageVectorCache;
  // Stage 1; null when nothing was ingested into the base yet (no collection: no hits, not an error).
  const stageOne = async () =>
    (await milvus.readyForSearch(id))
      ? milvus.candidates(id, queryVectors, context.config.search.candidateLimit)
      : null;
  let pages: string[];
  let plan: SearchPlan = { inMemory: false, fits: false, missing: [] };
  if (!cache.enabled) {
    const candidates = await stageOne();
    if (candidates === null) return [];
    pages = candidates;
  } else {
    // A base the cache holds nothing of takes the two-stage path unless it is tiny, so its stage 1
    // runs beside the Mongo read below rather than after it.
    const early = cache.holdsAny(id) ? null : stageOne();
    early?.catch(() => undefined);
    // Mongo's page list: it leaves out pages still being ingested and pages of deleted files, so
    // whatever the cache still holds of those is never scored.
    const listed = await listedPages(context, id);
    if (listed.length === 0) return [];
    plan = planSearch(cache, id, listed, dim);
    if (plan.inMemory) {
      // Exhaustive over the base: exact by construction, and no stage-1 search.
      if (plan.missing.length > 0 && !(await milvus.readyForSearch(id))) return [];
      pages = listed;
    } else {
      const candidates = await (early ?? stageOne());
      if (candidates === null) return [];
      const known = new Set(listed);
      pages = candidates.filter((page) => known.has(page));
    }
  }
  const scores = new MaxSimScores(query, dim);
  // A base that fits is filled by the warm-up below, so this read need not be a strong one; a base
  // that does not fit reads its candidates through the cache.
  const fill = plan.inMemory || !plan.fits;
  for await (const batch of milvus.pageVectors(id, pages, { fill })) {
    if (batch.pages) for (const [imageId, vectors] of batch.pages) scores.addPage(imageId, vectors);
    else scores.add(batch.imageIds, batch.vectors);
  }
  // Started only now, so that it never competes with this search's own reads.
  if (!plan.inMemory && plan.missing.length > 0) milvus.warm(id, plan.missing);
  return [...scores.scores()].map(([imageId, score]) => ({ knowledgeBase, imageId, score }));
}

interface SearchPlan {
  /** Every listed page is scored from memory, after reading the few that are missing. */
  inMemory: boolean;
  /** The base's pages fit in its share of the budget. */
  fits: boolean;
  /** Listed pages the cache lacks (only for a base that fits). */
  missing: string[];
}

/**
 * In memory when the base's pages fit in its share of the budget and the cache lacks only a few of
 * them; otherwise the two-stage search, and the missing pages of a base that fits are read in the
 * background so that the next search runs in memory. Bases larger than that share keep stage 1.
 */
function planSearch(
  cache: PageVectorCache,
  knowledgeBaseId: string,
  listed: readonly string[],
  dim: number,
): SearchPlan {
  const { bytes, missing } = cache.holding(knowledgeBaseId, listed);
  const held = listed.length - missing.length;
  const perPage = held > 0 ? bytes / held : (cache.averagePageBytes() ?? ASSUMED_VECTORS_PER_PAGE * dim * 4);
  if (bytes + missing.length * perPage > cache.budgetBytes * IN_MEMORY_SHARE)
    return { inMemory: false, fits: false, missing: [] };
  return { inMemory: missing.length <= IN_MEMORY_MAX_MISSING, fits: true, missing };
}

/** Every page Mongo lists for the caller's base; the same read answers the hits' file metadata. */
async function listedPages(context: Context, knowledgeBaseId: string): Promise<string[]> {
  const files = await context.loaders.filesOfKnowledgeBase.load(knowledgeBaseId);
  const pages: string[] = [];
  for (const file of files)
    for (const image of file.images) {
      context.loaders.fileByImage.prime(image.images_id, file);
      pages.push(image.images_id);
    }
  return pages;
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

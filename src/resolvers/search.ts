// searchKnowledgeBase(s): input and ownership checked before any I/O, then exact MaxSim per base: over the pages
// the cached codes cannot rule out (docs/performance.md, "Search: compact codes") or over stage 1's candidates
// until their top k is proven (docs/architecture.md, "Exact two-stage search").
import pLimit from "p-limit";
import type { Context } from "../context.js";
import { BadUserInput, UpstreamUnavailable } from "../errors.js";
import type { FileDoc, KnowledgeBaseDoc, PageImageDoc } from "../stores/documents.js";
import { MaxSimScores, toMatrix } from "../lib/maxsim.js";
import { CodeBounds, codesFloor, pageCodeBytes, type PageCodes } from "../lib/page-codes.js";
import type { PageVectorCache } from "../lib/page-vector-cache.js";
import { entryFloor, stageOneBounds, type ListedRow } from "../lib/threshold.js";
import { currentObservation } from "../observability/scope.js";
import type { ListedFile, PageVectorReadOptions } from "../stores/milvus.js";
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

  const threshold = args.scoreThreshold ?? -Infinity;
  const answers = await Promise.all(
    knowledgeBases.map((kb) => scorePages(context, kb, queryVectors, query, { topK: args.topK, threshold })),
  );
  reportCertificate(
    context,
    knowledgeBases.filter((_, i) => !answers[i]!.certified).map((kb) => kb.knowledge_base_id),
  );
  const ranked = answers
    .flatMap((answer) => answer.pages)
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

/** A base is searched in memory only when its pages' codes fit in this share of the code cache's budget. */
const IN_MEMORY_SHARE = 0.5;
/** The most code bytes one base may take: a base searched in memory fits in this. */
const baseShare = (cache: PageVectorCache<PageCodes>) => cache.budgetBytes * IN_MEMORY_SHARE;
/** At most this many uncached pages are read on the spot; past it the base is warmed in the background. */
const IN_MEMORY_MAX_MISSING = 16;
/** Code objects read from the bucket at once: enough to keep S3 busy, few enough to leave it to others. */
const CODE_OBJECT_READS_AT_ONCE = 8;
/** Pages per stage-2 read on the two-stage path: between reads the entry floor rises and prunes the rest. */
const STAGE_TWO_BATCH_PAGES = 64;
/** Pages per re-scoring read on the in-memory path: few, since the floor rises with each batch's exact scores. */
const RESCORE_BATCH_PAGES = 32;
/** Stage 1's limit grows by this factor per try while the answer is not proven. */
const WIDEN_FACTOR = 4;

/** One base's scored pages, and whether no page left unscored can enter its top k. */
interface BaseAnswer {
  pages: ScoredPage[];
  certified: boolean;
}

async function scorePages(
  context: Context,
  knowledgeBase: KnowledgeBaseDoc,
  queryVectors: number[][],
  query: Float32Array,
  want: Want,
): Promise<BaseAnswer> {
  const { milvus } = context.stores;
  const { dim } = context.config.milvus;
  const id = knowledgeBase.knowledge_base_id;
  const cache = milvus.pageCodeCache;
  const none: BaseAnswer = { pages: [], certified: true };
  // Stage 1; null when nothing was ingested into the base yet (no collection: no hits, not an error).
  const stageOne = async (limit: number) =>
    (await milvus.readyForSearch(id)) ? milvus.candidates(id, queryVectors, limit) : null;
  // With the cache off, stage 1 is certain, so it runs beside the Mongo read below rather than after
  // it. With it on, a base the cache holds nothing of is sized by its Milvus row count, asked beside
  // that read, and its codes may be in the bucket.
  const early = cache.enabled ? null : stageOne(context.config.search.candidateLimit);
  early?.catch(() => undefined);
  const refs = [...new Set(knowledgeBase.files.map((ref) => ref.file_id))];
  const cold = cache.enabled && !cache.holdsAny(id);
  const rows = cold ? milvus.searchableRows(id).catch(() => null) : null;
  // A base the cache holds nothing of: once its row count says its codes may fit, its files' codes are
  // read from the bucket beside the page list below (the base's refs name the files).
  const prefetched =
    rows?.then((count) =>
      count !== null && pageCodeBytes(count, dim) <= baseShare(cache) ? readCodeObjects(context, refs, true) : null,
    ) ?? null;
  // Mongo's page list: it leaves out pages still being ingested and pages of deleted files, so
  // whatever the cache, the bucket or Milvus still holds of those is never scored.
  const { files, read } = await listedFiles(context, id, refs);
  const listed = files.flatMap((file) => file.imageIds);
  if (listed.length === 0) return none;
  const storedRows = await rows;
  const plan = () => (cache.enabled ? planSearch(cache, id, listed, dim, storedRows) : UNCACHED);
  let chosen = plan();
  // Files the bucket holds no complete codes of: coded from Milvus after this search and written there.
  let uncoded: ListedFile[] = [];
  if (chosen.fits && chosen.missing.length > 0) {
    const wanted = new Set(chosen.missing);
    const holding = files.filter((file) => file.imageIds.some((imageId) => wanted.has(imageId)));
    const objects =
      (await prefetched) ??
      (await readCodeObjects(
        context,
        holding.map((file) => file.fileId),
        false,
      ));
    uncoded = cacheListedCodes(context, id, holding, objects, wanted);
    chosen = plan();
  }
  let answer: BaseAnswer;
  if (chosen.inMemory) {
    // Every listed page bounded from its codes, then scored exactly if it may enter the top k:
    // exact by construction, and no stage-1 search.
    if (chosen.missing.length > 0 && !(await milvus.readyForSearch(id))) return none;
    answer = {
      pages: scoredPages(knowledgeBase, await compactSearch(context, id, listed, query, want)),
      certified: true,
    };
  } else {
    const first = await (early ?? stageOne(context.config.search.candidateLimit));
    if (first === null) return none;
    // A base that fits is filled by the warm-up below, so its reads need not be strong ones; a base
    // that does not fit reads its candidates through the float cache.
    answer = await certifiedTwoStage(
      context,
      knowledgeBase,
      queryVectors,
      query,
      new Set(listed),
      want,
      first,
      !chosen.fits,
    );
  }
  // Started only now, so that it never competes with this search's own reads.
  if (uncoded.length > 0)
    milvus.warm(id, uncoded, (fileId, pages) => context.stores.pageCodeObjects.write(fileId, pages));
  settleFiles(context, id, read);
  currentObservation()?.metrics.searchAnswers.inc({
    path: chosen.inMemory ? "memory" : "two-stage",
    certified: String(answer.certified),
  });
  return answer;
}

/** What the caller asks of each base: its top k at or above the threshold. */
interface Want {
  topK: number;
  threshold: number;
}

/**
 * The two-stage search with its threshold-algorithm certificate (src/lib/threshold.ts): candidates are
 * scored exactly in order of their upper bound until none left can enter the top k; the answer is
 * proven when the entry floor beats what any page outside the lists can score. Otherwise stage 1 is
 * widened and searched again, keeping every exact score, up to SEARCH_CERTIFY_MAX_LIMIT rows per
 * query vector and SEARCH_CERTIFY_MAX_PAGES scored pages; past those the answer says it is unproven.
 */
async function certifiedTwoStage(
  context: Context,
  knowledgeBase: KnowledgeBaseDoc,
  queryVectors: number[][],
  query: Float32Array,
  listed: ReadonlySet<string>,
  want: Want,
  first: ListedRow[][],
  fill: boolean,
): Promise<BaseAnswer> {
  const { candidateLimit, certifyMaxLimit, certifyMaxPages } = context.config.search;
  const id = knowledgeBase.knowledge_base_id;
  const scores = new MaxSimScores(query, context.config.milvus.dim);
  let limit = candidateLimit;
  let lists = first;
  for (;;) {
    const { outside, upper } = stageOneBounds(lists, limit, (page) => listed.has(page));
    const { exact, overBudget } = await scoreInBoundOrder(
      scores,
      (batch) => readInto(scores, context, id, batch, { fill }),
      upper,
      (known) => entryFloor(known.values(), want.topK, want.threshold),
      STAGE_TWO_BATCH_PAGES,
      certifyMaxPages,
    );
    const floor = entryFloor(exact.values(), want.topK, want.threshold);
    const certified = !overBudget && (outside === -Infinity || outside < floor);
    if (certified || overBudget || limit >= certifyMaxLimit)
      return { pages: scoredPages(knowledgeBase, exact), certified };
    limit = Math.min(limit * WIDEN_FACTOR, certifyMaxLimit);
    lists = await context.stores.milvus.candidates(id, queryVectors, limit);
  }
}

/**
 * The exact scores of every listed page that may enter the top k: one pass over the cached codes
 * bounds each page, and of those whose upper bound reaches the k-th best lower bound, the highest
 * bounds are read as float32 vectors (through the float cache) and re-scored first, a batch at a time,
 * until the k-th exact score rules out the rest. The few pages not coded yet are read whole, scored
 * exactly and coded for the next search.
 */
async function compactSearch(
  context: Context,
  knowledgeBaseId: string,
  listed: readonly string[],
  query: Float32Array,
  want: Want,
): Promise<Map<string, number>> {
  const { dim } = context.config.milvus;
  const { found, missing } = context.stores.milvus.pageCodeCache.lookup(knowledgeBaseId, listed);
  const scores = new MaxSimScores(query, dim);
  if (missing.length > 0) await readInto(scores, context, knowledgeBaseId, missing, { fill: "codes" });
  const bounds = new CodeBounds(query, dim);
  await bounds.addPages(found);
  const floor = codesFloor(bounds.bounds, want.topK, want.threshold);
  const { exact } = await scoreInBoundOrder(
    scores,
    // Each page's row count is in its codes, so these reads need not be strong ones.
    (batch) => readInto(scores, context, knowledgeBaseId, batch, { fill: true, rows: rowCounts(found, batch) }),
    [...bounds.bounds].filter(([, bound]) => bound.upper >= floor).map(([pageId, bound]) => [pageId, bound.upper]),
    // Both are floors: k coded pages score at least `floor`, and k exactly scored ones at least their k-th.
    (known) => Math.max(floor, entryFloor(known.values(), want.topK, want.threshold)),
    RESCORE_BATCH_PAGES,
  );
  return exact;
}

/**
 * Scores pages exactly in order of their upper bound, a batch at a time, until no page left can reach
 * the floor (which rises as exact scores come in) or `maxPages` pages hold exact scores. Returns every
 * exact score and whether it stopped for `maxPages` while a page left could still enter.
 */
async function scoreInBoundOrder(
  scores: MaxSimScores,
  read: (pages: string[]) => Promise<void>,
  upperBounds: Iterable<[string, number]>,
  floorOf: (exact: ReadonlyMap<string, number>) => number,
  batchPages: number,
  maxPages = Infinity,
): Promise<{ exact: Map<string, number>; overBudget: boolean }> {
  let exact = scores.scores();
  const unscored = [...upperBounds].filter(([page]) => !exact.has(page)).sort((a, b) => b[1] - a[1]);
  let next = 0;
  for (;;) {
    const floor = floorOf(exact);
    const batch: string[] = [];
    const room = Math.min(batchPages, maxPages - exact.size);
    while (next < unscored.length && batch.length < room && unscored[next]![1] >= floor)
      batch.push(unscored[next++]![0]);
    if (batch.length === 0) return { exact, overBudget: next < unscored.length && unscored[next]![1] >= floor };
    await read(batch);
    exact = scores.scores();
  }
}

/** Reads these pages' vectors (through the float cache) into `scores`. */
async function readInto(
  scores: MaxSimScores,
  context: Context,
  knowledgeBaseId: string,
  pages: readonly string[],
  options: PageVectorReadOptions,
): Promise<void> {
  for await (const batch of context.stores.milvus.pageVectors(knowledgeBaseId, pages, options)) {
    if (batch.pages) await scores.addPages(batch.pages);
    else scores.add(batch.imageIds, batch.vectors);
  }
}

const rowCounts = (codes: ReadonlyMap<string, PageCodes>, pages: readonly string[]) =>
  new Map(pages.map((page) => [page, codes.get(page)!.rows]));

const scoredPages = (knowledgeBase: KnowledgeBaseDoc, scores: ReadonlyMap<string, number>): ScoredPage[] =>
  [...scores].map(([imageId, score]) => ({ knowledgeBase, imageId, score }));

interface SearchPlan {
  /** Every listed page is scored from memory, after reading the few that are missing. */
  inMemory: boolean;
  /** The base's pages fit in its share of the budget. */
  fits: boolean;
  /** Listed pages the cache lacks (only for a base that fits). */
  missing: string[];
}

/** The plan when the cache is off: the two-stage search, nothing to warm. */
const UNCACHED: SearchPlan = { inMemory: false, fits: false, missing: [] };

/**
 * In memory when the base's pages fit in its share of the budget and the cache lacks only a few of
 * them; otherwise the two-stage search, and the missing pages of a base that fits are read in the
 * background so that the next search runs in memory. Bases larger than that share keep stage 1.
 * A page's size is what the cache holds of this base, else the base's Milvus rows over its listed
 * pages (`storedRows`, asked only while the cache holds none of it), else the cache's average page.
 */
function planSearch(
  cache: PageVectorCache<PageCodes>,
  knowledgeBaseId: string,
  listed: readonly string[],
  dim: number,
  storedRows: number | null,
): SearchPlan {
  const { bytes, missing } = cache.holding(knowledgeBaseId, listed);
  const held = listed.length - missing.length;
  const perPage =
    held > 0
      ? bytes / held
      : storedRows
        ? pageCodeBytes(storedRows / listed.length, dim)
        : (cache.averagePageBytes() ?? pageCodeBytes(MAX_VECTORS_PER_PAGE, dim));
  if (bytes + missing.length * perPage > baseShare(cache)) return { inMemory: false, fits: false, missing: [] };
  return { inMemory: missing.length <= IN_MEMORY_MAX_MISSING, fits: true, missing };
}

/**
 * Every page Mongo lists for the caller's base `id`, by file: the files its document refs (`refs`; a file
 * being deleted loses its ref first), each taken from the settled files or else read, in one batched
 * read. The same documents answer the hits' file metadata. `read` is what was read, to be settled after
 * the search.
 */
async function listedFiles(
  context: Context,
  id: string,
  refs: readonly string[],
): Promise<{ files: ListedFile[]; read: FileDoc[] }> {
  const { settled, unsettled } = context.stores.mongo.settledFiles.lookup(id, refs);
  const read = (await Promise.all(unsettled.map((fileId) => context.loaders.file.load(fileId)))).filter(
    (doc): doc is FileDoc => doc !== null && doc.knowledge_db_id === id,
  );
  const files = [...settled, ...read].map((file) => ({
    fileId: file.file_id,
    imageIds: file.images.map((image) => {
      context.loaders.fileByImage.prime(image.images_id, file);
      return image.images_id;
    }),
  }));
  return { files, read };
}

/** Files counted in one Milvus query when settling: a filter of about 50 bytes per file. */
const SETTLE_FILES_PER_COUNT = 256;

/**
 * Settles, in the background, the files read for this search whose listed pages are all coded: when
 * Milvus holds no more rows of them than their pages' codes count, their documents already list every
 * page they will ever have (src/lib/settled-files.ts). A group is counted in one strong query and halved
 * while it does not add up, down to the file still being ingested.
 */
function settleFiles(context: Context, knowledgeBaseId: string, docs: readonly FileDoc[]): void {
  const { milvus, mongo } = context.stores;
  const coded = docs.flatMap((doc) => {
    const codes = milvus.pageCodeCache.peek(
      knowledgeBaseId,
      doc.images.map((image) => image.images_id),
    );
    return codes ? [{ doc, rows: [...codes.values()].reduce((sum, page) => sum + page.rows, 0) }] : [];
  });
  if (coded.length === 0) return;
  const check = async (group: typeof coded): Promise<void> => {
    const rows = await milvus.fileRows(
      knowledgeBaseId,
      group.map((file) => file.doc.file_id),
    );
    if (rows === group.reduce((sum, file) => sum + file.rows, 0))
      mongo.settledFiles.settle(
        knowledgeBaseId,
        group.map((file) => file.doc),
      );
    else if (group.length > 1) {
      const half = Math.ceil(group.length / 2);
      await check(group.slice(0, half));
      await check(group.slice(half));
    }
  };
  mongo.settledFiles.checks.start(knowledgeBaseId, async () => {
    for (let start = 0; start < coded.length; start += SETTLE_FILES_PER_COUNT)
      await check(coded.slice(start, start + SETTLE_FILES_PER_COUNT));
  });
}

/**
 * The files' page codes from the bucket (file id -> its pages, or null when it has no valid object), a
 * few objects at a time. With `capped`, null once their bytes pass the base's share of the code cache:
 * read before the plan knows whether the base fits. The bucket is only a shortcut: an object it cannot
 * give (S3 down, a damaged object) counts as absent.
 */
async function readCodeObjects(
  context: Context,
  fileIds: readonly string[],
  capped: boolean,
): Promise<Map<string, Map<string, PageCodes> | null> | null> {
  const limit = baseShare(context.stores.milvus.pageCodeCache);
  const reads = pLimit(CODE_OBJECT_READS_AT_ONCE);
  let bytes = 0;
  const objects = await Promise.all(
    fileIds.map((fileId) =>
      reads(async () => {
        if (bytes > limit) return null;
        const pages = await context.stores.pageCodeObjects.read(fileId, limit).catch(() => null);
        for (const page of pages?.values() ?? []) bytes += page.byteLength;
        return pages;
      }),
    ),
  );
  if (capped && bytes > limit) return null;
  return new Map(fileIds.map((fileId, i) => [fileId, objects[i]!]));
}

/**
 * Puts the wanted pages of these listed files into the code cache from their objects, and returns the
 * files with no complete object: an object's pages that Mongo does not list are never used.
 */
function cacheListedCodes(
  context: Context,
  knowledgeBaseId: string,
  files: readonly ListedFile[],
  objects: ReadonlyMap<string, ReadonlyMap<string, PageCodes> | null> | null,
  wanted: ReadonlySet<string>,
): ListedFile[] {
  const cache = context.stores.milvus.pageCodeCache;
  return files.filter((file) => {
    const pages = objects?.get(file.fileId);
    for (const imageId of file.imageIds) {
      const page = pages?.get(imageId);
      if (page && wanted.has(imageId)) cache.set(knowledgeBaseId, imageId, page);
    }
    return !(pages && file.imageIds.every((imageId) => pages.has(imageId)));
  });
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

/** ColQwen2.5 caps a page at 768 image tokens; assumed only while nothing is known of any base. */
const MAX_VECTORS_PER_PAGE = 1024;

/** `extensions.search` of a response with search fields: whether every base's top k is proven exact. */
interface SearchCertificate {
  certified: boolean;
  /** The bases whose answer is the best stage 1 found within SEARCH_CERTIFY_MAX_LIMIT/_PAGES, unproven. */
  uncertifiedKnowledgeBaseIds: string[];
}

function reportCertificate(context: Context, uncertified: readonly string[]): void {
  const extensions = (context.resultExtensions ??= {});
  const report = (extensions.search ??= { certified: true, uncertifiedKnowledgeBaseIds: [] }) as SearchCertificate;
  for (const id of uncertified)
    if (!report.uncertifiedKnowledgeBaseIds.includes(id)) report.uncertifiedKnowledgeBaseIds.push(id);
  report.certified = report.uncertifiedKnowledgeBaseIds.length === 0;
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

import {
  ConsistencyLevelEnum,
  DataType,
  LoadState,
  MilvusClient,
  type ResStatus,
  type SearchResultData,
} from "@zilliz/milvus2-sdk-node";
import type { Config } from "../config.js";
import { UpstreamUnavailable, errorMessage } from "../errors.js";
import { toMatrix } from "../lib/maxsim.js";
import { encodePage, type PageCodes } from "../lib/page-codes.js";
import { BackgroundJobs } from "../lib/background-jobs.js";
import { PageVectorCache } from "../lib/page-vector-cache.js";
import type { ListedRow } from "../lib/threshold.js";
import { probe, type StoreHealth } from "./health.js";
import { observeStoreCall } from "./observe.js";
import { withTimeout } from "./timeout.js";

/** LAYRA names one collection per knowledge base: `colqwen` + the id with `-` replaced by `_`. */
export function collectionName(knowledgeBaseId: string): string {
  return `colqwen${knowledgeBaseId.replaceAll("-", "_")}`;
}

/**
 * The share of SEARCH_CACHE_BYTES kept for float32 pages (those searches re-score, and a large base's
 * candidates); the rest holds compact codes of whole bases.
 */
const FLOAT_CACHE_SHARE = 1 / 8;

/** Pages per read of a warm-up: its rows wait for its last window, at most 65,536 of them at 1,024 per page. */
const WARM_PAGES_PER_READ = 64;

/** LAYRA's auto-id primary key field (docs/layra-contract.md, "Milvus"). */
const PRIMARY_KEY = "pk";

interface PageVectorRow {
  image_id: string;
  vector: number[];
}

/** Stage-2 vectors: whole pages (from the cache) or the rows of one query window (`imageIds[i]` owns row i). */
type PageVectorBatch =
  { pages: ReadonlyMap<string, Float32Array> } | { pages?: undefined; imageIds: string[]; vectors: Float32Array };

export interface PageVectorReadOptions {
  fill: boolean | "codes";
  /** Each page's row count, when known: lets a filling read skip strong consistency and check instead. */
  rows?: ReadonlyMap<string, number>;
}

type Status = Pick<ResStatus, "error_code" | "reason" | "code">;

/** The status of a call: some SDK calls answer it alone, others beside their data. */
const statusOf = (result: { status: Status } | Status): Status => ("status" in result ? result.status : result);

const collectionNotFound = (status: Status) => status.code === 100 || status.error_code === "CollectionNotExists";

/** JSON string literals are valid Milvus expression strings, quotes and backslashes escaped. */
const fileIdsFilter = (fileIds: readonly string[]) =>
  `file_id in [${fileIds.map((id) => JSON.stringify(id)).join(", ")}]`;

/** A file's pages as Mongo lists them: what a warm-up codes and hands back file by file. */
export interface ListedFile {
  fileId: string;
  imageIds: readonly string[];
}

/** One row per token vector of a page, as LAYRA inserts them (0-based page_number; docs/layra-contract.md). */
interface VectorRow {
  vector: number[];
  image_id: string;
  page_number: number;
  file_id: string;
}

/** One knowledge-base collection as operators see it. */
export interface MilvusCollectionStats {
  collection: string;
  rowCount: number;
  indexType: string | null;
  indexParams: Record<string, unknown> | null;
  metricType: string | null;
  loaded: boolean;
}

export interface MilvusStore {
  /** The SDK client, for tests and tools that check or write as LAYRA does; gateway code uses the methods. */
  client: MilvusClient;
  /** Creates a knowledge base's collection with LAYRA's schema and the configured HNSW index, loaded. */
  createCollection(knowledgeBaseId: string): Promise<void>;
  insertRows(knowledgeBaseId: string, rows: VectorRow[]): Promise<void>;
  /** Drops a knowledge base's collection; a missing one is already dropped (idempotent). */
  dropCollection(knowledgeBaseId: string): Promise<void>;
  /**
   * Deletes the rows of these files (`file_id in [...]`, as LAYRA does); a missing collection has
   * none. Their pages (`imageIds`) leave the page-vector cache, to free the memory.
   */
  deleteFileRows(knowledgeBaseId: string, fileIds: string[], imageIds?: readonly string[]): Promise<void>;
  /** Loads the collection if it is not loaded; false when it does not exist (nothing ingested yet). */
  readyForSearch(knowledgeBaseId: string): Promise<boolean>;
  /**
   * Stage 1: the `limit` nearest token rows of every query vector, in one batched search, as one
   * list per query vector (page id and similarity, best first; shorter when the collection is).
   */
  candidates(knowledgeBaseId: string, queryVectors: number[][], limit: number): Promise<ListedRow[][]>;
  /**
   * Stage 2: every token vector of the given pages. Pages in the float cache come first, in one
   * batch; the rest is read one query window at a time, so no page is cut short. With `fill` the
   * read is strong and fills the float cache (`true`) or the code cache (`"codes"`); without it, it
   * reads at the collection's consistency like LAYRA, faster on the Milvus engine (a strong read
   * waits for the next time tick). With `fill: true` and every page's row count known (`rows`, from
   * its codes), the read is eventually consistent (it waits for no timestamp) and checked page by
   * page: a page whose rows do not add up is read again strongly, and only complete pages are cached.
   */
  pageVectors(
    knowledgeBaseId: string,
    imageIds: readonly string[],
    options: PageVectorReadOptions,
  ): AsyncIterable<PageVectorBatch>;
  /**
   * Codes these files' pages into the code cache in the background (one warm-up per base at a time),
   * reading from Milvus only the pages it lacks, and hands each file's codes to `coded` once all of
   * them are held (a failed `coded` only skips that file).
   */
  warm(
    knowledgeBaseId: string,
    files: readonly ListedFile[],
    coded?: (fileId: string, pages: ReadonlyMap<string, PageCodes>) => Promise<void>,
  ): void;
  /** Resolves when no warm-up is running (benchmarks and tests wait on it). */
  warmUpsDone(): Promise<void>;
  /** Float32 page vectors kept in process: the pages searches re-score, under a share of SEARCH_CACHE_BYTES (docs/performance.md). */
  pageVectorCache: PageVectorCache;
  /** Compact codes of whole bases, under the rest of SEARCH_CACHE_BYTES (docs/performance.md, "Search: compact codes"). */
  pageCodeCache: PageVectorCache<PageCodes>;
  /** The rows of a knowledge base's collection in pk-paged batches (none when it does not exist), for backups. */
  rows(knowledgeBaseId: string, batchSize: number): AsyncIterable<VectorRow[]>;
  /** The row count of a knowledge base's collection; null when it does not exist. */
  rowCount(knowledgeBaseId: string): Promise<number | null>;
  /**
   * The rows a search sees now (`count(*)`), for the search planner: the real engine's statistics
   * leave out rows not yet flushed. Null when the collection does not exist.
   */
  searchableRows(knowledgeBaseId: string): Promise<number | null>;
  /** The rows these files have (`count(*)`, strong: every row inserted so far), 0 without a collection. */
  fileRows(knowledgeBaseId: string, fileIds: readonly string[]): Promise<number>;
  /** Every LAYRA collection (`colqwen...`), by name, with its rows, index and load state, for operators. */
  collectionStats(): Promise<MilvusCollectionStats[]>;
  health(): Promise<StoreHealth>;
  close(): Promise<void>;
}

export function createMilvusStore(config: Config): MilvusStore {
  const address = config.milvus.address.replace(/^https?:\/\//, "");
  // The SDK says hello to the server from its constructor, and some calls (createCollection among
  // them) await that first promise for the client's whole life: a client created while Milvus was
  // down never works again. So a client whose hello failed is replaced on the next call, as the
  // Mongo store reconnects by itself. (Not catching the rejection would also crash the process.)
  let current!: MilvusClient;
  let helloFailed = false;
  const connect = () => {
    const client = new MilvusClient({
      address,
      ssl: config.milvus.address.startsWith("https://"),
      token: config.milvus.token,
      timeout: config.storeTimeoutMs,
    });
    helloFailed = false;
    client.connectPromise.catch(() => {
      if (client === current) helloFailed = true;
    });
    current = client;
  };
  connect();
  const milvus = () => {
    if (helloFailed) {
      const failed = current;
      connect();
      void failed.closeConnection().catch(() => undefined);
    }
    return current;
  };
  const check = (what: string, status: { error_code: string | number; reason: string }) => {
    if (status.error_code !== "Success") throw new UpstreamUnavailable("milvus", `${what}: ${status.reason}`);
  };
  const { metricType, dim } = config.milvus;
  const { ef, queryWindow } = config.search;
  const cache = new PageVectorCache(Math.floor(config.search.cacheBytes * FLOAT_CACHE_SHARE));
  const codeCache = new PageVectorCache<PageCodes>(config.search.cacheBytes - cache.budgetBytes);
  const warmUps = new BackgroundJobs();

  /** One Milvus call, observed as `operation` in store_call_duration_seconds. */
  const observed = <T>(operation: string, work: () => Promise<T>) => observeStoreCall("milvus", work, operation);
  const exists = (collection_name: string) =>
    observed("hasCollection", () => milvus().hasCollection({ collection_name })).then((result) =>
      Boolean(result.value),
    );

  /** One search-path call: no answer in time or a broken connection is UPSTREAM_UNAVAILABLE. */
  async function searchCall<T extends { status: Status } | Status>(
    what: string,
    work: () => Promise<T>,
    expected = (_status: Status) => false,
  ): Promise<T> {
    let result: T;
    try {
      result = await observed(what, () => withTimeout("milvus", config.storeTimeoutMs, work()));
    } catch (error) {
      if (error instanceof UpstreamUnavailable) throw error;
      throw new UpstreamUnavailable("milvus", `${what}: ${errorMessage(error)}`);
    }
    const status = statusOf(result);
    if (!expected(status)) check(what, status);
    return result;
  }
  /** `count(*)` of a collection's rows (those matching `filter`); null when it does not exist. */
  async function countRows(
    knowledgeBaseId: string,
    options: { filter?: string; consistency_level?: ConsistencyLevelEnum },
  ): Promise<number | null> {
    const counted = await searchCall(
      "query",
      () =>
        milvus().query({ collection_name: collectionName(knowledgeBaseId), output_fields: ["count(*)"], ...options }),
      collectionNotFound,
    );
    if (collectionNotFound(counted.status)) return null;
    return Number(counted.data[0]?.["count(*)"] ?? 0);
  }
  async function* pageVectors(
    knowledgeBaseId: string,
    imageIds: readonly string[],
    options: PageVectorReadOptions,
  ): AsyncIterable<PageVectorBatch> {
    let wanted = imageIds;
    const target = options.fill === "codes" ? codeCache : cache;
    if (cache.enabled) {
      const { found, missing } = cache.lookup(knowledgeBaseId, imageIds);
      if (options.fill === "codes")
        for (const [imageId, vectors] of found) codeCache.set(knowledgeBaseId, imageId, encodePage(vectors, dim));
      if (found.size > 0) yield { pages: found };
      wanted = missing;
    }
    if (wanted.length === 0) return;
    const expected = options.fill === true ? options.rows : undefined;
    // Rows read per page, when each page's count is known: a page short of them is read again strongly.
    const counts = expected && wanted.every((id) => expected.has(id)) ? new Map<string, number>() : null;
    const strong = Boolean(options.fill) && counts === null;
    // LAYRA inserts each page in one call before Mongo lists it: a strong read sees such a page whole or
    // not at all, so what goes into the cache is complete. A checked read need not wait for any
    // timestamp: each page's row count is known, and a page whose rows do not add up is read again.
    const consistency = strong
      ? { consistency_level: ConsistencyLevelEnum.Strong }
      : counts
        ? { consistency_level: ConsistencyLevelEnum.Eventually }
        : {};
    const inPages = `image_id in [${wanted.map((id) => JSON.stringify(id)).join(",")}]`;
    // Rows kept for the cache, per page, while they fit the budget (the scoring never waits on them).
    let fill: Map<string, number[][]> | null = target.enabled && options.fill ? new Map() : null;
    let fillBytes = 0;
    // Walk the matching rows in primary-key order, one window at a time (Milvus caps a query's
    // offset+limit at 16384, and LAYRA's single limit=1000 query cut long pages short).
    let after: string | null = null;
    for (;;) {
      const filter: string = after === null ? inPages : `(${inPages}) and ${PRIMARY_KEY} > ${after}`;
      const window = await searchCall("query", () =>
        milvus().query({
          collection_name: collectionName(knowledgeBaseId),
          filter,
          output_fields: [PRIMARY_KEY, "image_id", "vector"],
          limit: queryWindow,
          ...consistency,
        }),
      );
      const rows = window.data as unknown as PageVectorRow[];
      const ids = rows.map((row) => row.image_id);
      yield {
        imageIds: ids,
        vectors: toMatrix(
          rows.map((row) => row.vector),
          dim,
        ),
      };
      if (counts) for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
      if (fill) {
        fillBytes += rows.length * dim * 4;
        if (fillBytes > cache.budgetBytes + codeCache.budgetBytes) fill = null;
        else
          rows.forEach((row, i) => {
            const page = fill!.get(ids[i]!);
            if (page) page.push(row.vector);
            else fill!.set(ids[i]!, [row.vector]);
          });
      }
      if (rows.length < queryWindow) break;
      after = String(window.data[window.data.length - 1]![PRIMARY_KEY]);
    }
    const short = new Set(counts ? wanted.filter((id) => counts.get(id) !== expected!.get(id)) : []);
    // Only now is every page complete: the last window has been read.
    for (const [imageId, vectors] of fill ?? []) {
      if (short.has(imageId)) continue;
      const matrix = toMatrix(vectors, dim);
      if (options.fill === "codes") {
        codeCache.set(knowledgeBaseId, imageId, encodePage(matrix, dim));
        // The float32 rows are at hand: kept while the float share has room, a search re-scoring this
        // page later need not read it from Milvus again (the answer's re-scored pages are few, but
        // each one read is a Milvus round trip on the search's path).
        cache.setIfRoom(knowledgeBaseId, imageId, matrix);
      } else cache.set(knowledgeBaseId, imageId, matrix);
    }
    // Rows seen twice change no MaxSim (each query vector keeps its best row).
    if (short.size > 0) yield* pageVectors(knowledgeBaseId, [...short], { fill: true });
  }

  return {
    get client() {
      return milvus();
    },
    createCollection: async (knowledgeBaseId) => {
      const collection_name = collectionName(knowledgeBaseId);
      if (await exists(collection_name)) return;
      check(
        "createCollection",
        await observed("createCollection", () =>
          milvus().createCollection({
            collection_name,
            enable_dynamic_field: false,
            fields: [
              { name: "pk", data_type: DataType.Int64, is_primary_key: true, autoID: true },
              { name: "vector", data_type: DataType.FloatVector, dim: config.milvus.dim },
              { name: "image_id", data_type: DataType.VarChar, max_length: 65535 },
              { name: "page_number", data_type: DataType.Int64 },
              { name: "file_id", data_type: DataType.VarChar, max_length: 65535 },
            ],
          }),
        ),
      );
      check(
        "createIndex",
        await observed("createIndex", () =>
          milvus().createIndex({
            collection_name,
            field_name: "vector",
            index_name: "vector_index",
            index_type: "HNSW",
            metric_type: config.milvus.metricType,
            params: { M: config.milvus.hnswM, efConstruction: config.milvus.efConstruction },
          }),
        ),
      );
      check("loadCollection", await observed("loadCollection", () => milvus().loadCollection({ collection_name })));
    },
    insertRows: async (knowledgeBaseId, rows) => {
      const result = await observed("insert", () =>
        milvus().insert({ collection_name: collectionName(knowledgeBaseId), data: rows.map((row) => ({ ...row })) }),
      );
      check("insert", result.status);
    },
    dropCollection: async (knowledgeBaseId) => {
      const collection_name = collectionName(knowledgeBaseId);
      cache.evict(knowledgeBaseId);
      codeCache.evict(knowledgeBaseId);
      if (!(await exists(collection_name))) return;
      check("dropCollection", await observed("dropCollection", () => milvus().dropCollection({ collection_name })));
    },
    deleteFileRows: async (knowledgeBaseId, fileIds, imageIds = []) => {
      const collection_name = collectionName(knowledgeBaseId);
      cache.evict(knowledgeBaseId, imageIds);
      codeCache.evict(knowledgeBaseId, imageIds);
      if (fileIds.length === 0 || !(await exists(collection_name))) return;
      check(
        "delete",
        (await observed("delete", () => milvus().delete({ collection_name, filter: fileIdsFilter(fileIds) }))).status,
      );
    },
    readyForSearch: async (knowledgeBaseId) => {
      const collection_name = collectionName(knowledgeBaseId);
      // milvus-lite answers LoadStateNotExist; Milvus 2.5 answers a collection-not-found status (code 100).
      const { status, state } = await searchCall(
        "getLoadState",
        () => milvus().getLoadState({ collection_name }),
        collectionNotFound,
      );
      if (collectionNotFound(status) || state === LoadState.LoadStateNotExist) return false;
      // A collection can be released (LAYRA's _create_index releases it; so can an operator): load it again.
      if (state !== LoadState.LoadStateLoaded)
        await searchCall("loadCollection", () => milvus().loadCollectionSync({ collection_name }));
      return true;
    },
    candidates: async (knowledgeBaseId, queryVectors, limit) => {
      const found = await searchCall("search", () =>
        milvus().search({
          collection_name: collectionName(knowledgeBaseId),
          data: queryVectors,
          limit,
          metric_type: metricType,
          params: { ef: Math.max(ef, limit) },
          // Only the page id: the vectors come back in stage 2, exactly and complete.
          output_fields: ["image_id"],
        }),
      );
      // The SDK unwraps the per-vector lists when there is a single query vector.
      const perVector = (queryVectors.length === 1 ? [found.results] : found.results) as SearchResultData[][];
      return perVector.map((hits) => hits.map((hit) => ({ imageId: String(hit.image_id), score: Number(hit.score) })));
    },
    pageVectors,
    warm: (knowledgeBaseId, files, coded) => {
      if (!codeCache.enabled || files.length === 0) return;
      warmUps.start(knowledgeBaseId, async () => {
        // Failures only leave the cache cold: the next search reads what it needs itself. A read
        // holds its rows until its last window, so reads of a few pages keep that memory bounded;
        // files are taken a few at a time so that each one's codes are handed on once read.
        for (let first = 0; first < files.length;) {
          const group: ListedFile[] = [];
          let pages = 0;
          while (first < files.length && (group.length === 0 || pages < WARM_PAGES_PER_READ)) {
            group.push(files[first]!);
            pages += files[first++]!.imageIds.length;
          }
          const { missing } = codeCache.holding(
            knowledgeBaseId,
            group.flatMap((file) => file.imageIds),
          );
          for (let start = 0; start < missing.length; start += WARM_PAGES_PER_READ)
            for await (const _ of pageVectors(knowledgeBaseId, missing.slice(start, start + WARM_PAGES_PER_READ), {
              fill: "codes",
            }));
          if (coded)
            for (const file of group) {
              const held = codeCache.peek(knowledgeBaseId, file.imageIds);
              if (held) await coded(file.fileId, held).catch(() => undefined);
            }
        }
      });
    },
    warmUpsDone: () => warmUps.idle(),
    pageVectorCache: cache,
    pageCodeCache: codeCache,
    rows: async function* (knowledgeBaseId, batchSize) {
      const collection_name = collectionName(knowledgeBaseId);
      if (!(await exists(collection_name))) return;
      const iterator = await observed("queryIterator", () =>
        milvus().queryIterator({
          collection_name,
          filter: "",
          output_fields: ["vector", "image_id", "page_number", "file_id"],
          batchSize,
        }),
      );
      const batches = (iterator as AsyncIterable<(VectorRow & { pk: string })[]>)[Symbol.asyncIterator]();
      for (;;) {
        const next = await observed("query", () => batches.next());
        if (next.done) return;
        yield next.value.map((row) => ({
          vector: row.vector,
          image_id: row.image_id,
          page_number: Number(row.page_number),
          file_id: row.file_id,
        }));
      }
    },
    rowCount: async (knowledgeBaseId) => {
      const collection_name = collectionName(knowledgeBaseId);
      if (!(await exists(collection_name))) return null;
      const stats = await observed("getCollectionStatistics", () =>
        milvus().getCollectionStatistics({ collection_name }),
      );
      return Number(stats.data.row_count);
    },
    searchableRows: (knowledgeBaseId) => countRows(knowledgeBaseId, {}),
    fileRows: async (knowledgeBaseId, fileIds) =>
      (await countRows(knowledgeBaseId, {
        filter: fileIdsFilter(fileIds),
        consistency_level: ConsistencyLevelEnum.Strong,
      })) ?? 0,
    collectionStats: async () => {
      const listed = await observed("listCollections", () => milvus().listCollections());
      const names = listed.data.map((c) => c.name).filter((name) => name.startsWith("colqwen"));
      return Promise.all(
        names.sort().map(async (collection_name) => {
          const [stats, index, load] = await Promise.all([
            observed("getCollectionStatistics", () => milvus().getCollectionStatistics({ collection_name })),
            observed("describeIndex", () => milvus().describeIndex({ collection_name })),
            observed("getLoadState", () => milvus().getLoadState({ collection_name })),
          ]);
          const params: Record<string, string> = Object.fromEntries(
            (index.index_descriptions?.[0]?.params ?? []).map((p) => [p.key, String(p.value)]),
          );
          return {
            collection: collection_name,
            rowCount: Number(stats.data.row_count),
            indexType: params.index_type ?? null,
            indexParams: params.params ? (JSON.parse(params.params) as Record<string, unknown>) : null,
            metricType: params.metric_type ?? null,
            loaded: String(load.state) === "LoadStateLoaded",
          };
        }),
      );
    },
    health: () =>
      probe("milvus", async () => {
        const result = await withTimeout("milvus", config.storeTimeoutMs, milvus().listCollections());
        if (result.status.error_code !== "Success") throw new Error(result.status.reason);
      }),
    close: () => current.closeConnection().then(() => undefined),
  };
}

// Prometheus metrics in a registry of the app's own (never prom-client's global one), served at
// /metrics. Operation names come from client documents, so at most MAX_OPERATION_NAMES distinct
// names get their own label; later ones are counted as "other".
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { PageVectorCache } from "../lib/page-vector-cache.js";

const MAX_OPERATION_NAMES = 500;
/** GraphQL names are short; a longer one is a probe, labelled `other`. */
const MAX_OPERATION_NAME_LENGTH = 64;
const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** How an operation ended: "success", "error" (a result with errors), "rejected" (refused before it ran). */
export type Outcome = "success" | "error" | "rejected";

export class Metrics {
  readonly registry = new Registry();
  private readonly names = new Set<string>();

  readonly operations = new Counter({
    name: "graphql_operations_total",
    help: "GraphQL operations by operation name, type and outcome",
    labelNames: ["operation", "type", "outcome"],
    registers: [this.registry],
  });
  readonly operationDuration = new Histogram({
    name: "graphql_operation_duration_seconds",
    help: "GraphQL operation latency (for subscriptions: time to set up the stream)",
    labelNames: ["operation", "type", "outcome"],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly subscriptionExecutions = new Counter({
    name: "graphql_subscription_event_executions_total",
    help: "Executions of a subscription's selection over one event, each shared by every subscriber who asked the same thing",
    registers: [this.registry],
  });
  readonly rejections = new Counter({
    name: "graphql_rejections_total",
    help: "Operations refused before execution, by reason (depth, aliases, cost, tokens, document size, body size, rate limit, persisted, validation, parse)",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly storeCalls = new Histogram({
    name: "store_call_duration_seconds",
    help: "Store call latency by store, operation and outcome",
    labelNames: ["store", "operation", "outcome"],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly storeErrors = new Counter({
    name: "store_call_errors_total",
    help: "Failed store calls by store and operation",
    labelNames: ["store", "operation"],
    registers: [this.registry],
  });
  readonly openSubscriptions = new Gauge({
    name: "graphql_subscriptions_open",
    help: "Subscriptions currently streaming (graphql-ws and SSE)",
    registers: [this.registry],
  });
  readonly wsConnections = new Gauge({
    name: "graphql_ws_connections_open",
    help: "Open graphql-ws WebSocket connections",
    registers: [this.registry],
  });
  readonly loaderBatchSize = new Histogram({
    name: "dataloader_batch_size",
    help: "Keys per DataLoader batch, by loader",
    labelNames: ["loader"],
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
    registers: [this.registry],
  });

  readonly searchAnswers = new Counter({
    name: "search_answers_total",
    help: "Knowledge bases searched, by path (memory: every page scored; two-stage) and whether the top k is proven exact",
    labelNames: ["path", "certified"],
    registers: [this.registry],
  });

  // The ingestion worker's own (src/worker.ts serves them on WORKER_PORT).
  readonly ingestFiles = new Counter({
    name: "ingest_files_total",
    help: "Files the ingestion worker finished, by outcome (ingested, failed, skipped: already ingested)",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  readonly ingestPages = new Counter({
    name: "ingest_pages_total",
    help: "Pages rendered, embedded and stored by the ingestion worker",
    registers: [this.registry],
  });
  readonly ingestStage = new Histogram({
    name: "ingest_stage_duration_seconds",
    help: "Time per ingestion stage (render, model, milvus, s3, mongo)",
    labelNames: ["stage"],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly ingestUnhandled = new Counter({
    name: "ingest_unhandled_messages_total",
    help: "Messages the worker forwarded to the unhandled topic, by kind (a LAYRA workflow type, other, malformed)",
    labelNames: ["kind"],
    registers: [this.registry],
  });

  // The sweep of presigned uploads never committed (src/resolvers/ingestion/upload-sweep.ts).
  readonly uploadSweepObjectsRemoved = new Counter({
    name: "upload_sweep_objects_removed_total",
    help: "Objects of presigned uploads never committed that a sweep removed from the bucket",
    registers: [this.registry],
  });
  readonly uploadSweepPostponed = new Counter({
    name: "upload_sweep_postponed_total",
    help: "Sweeps that stopped because a store failed (the uploads they left are retried later), by store",
    labelNames: ["store"],
    registers: [this.registry],
  });

  // Answers (`ask`, docs/ask.md); no user, conversation, model or URL label.
  readonly answers = new Counter({
    name: "ask_answers_total",
    help: "Answers finished, by outcome (completed, aborted, failed)",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  readonly answerErrors = new Counter({
    name: "ask_errors_total",
    help: "Answers that failed, by error class (MODEL_UNAVAILABLE, MODEL_REFUSED, MODEL_TIMEOUT, MODEL_URL_REFUSED, TIME_LIMIT, RETRIEVAL, SAVE)",
    labelNames: ["class"],
    registers: [this.registry],
  });
  readonly answerTokens = new Counter({
    name: "ask_tokens_total",
    help: "Tokens the chat models reported, by kind (prompt, completion)",
    labelNames: ["kind"],
    registers: [this.registry],
  });
  readonly answerFirstToken = new Histogram({
    name: "ask_time_to_first_token_seconds",
    help: "From the ask to the model's first reasoning or answer delta",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly answersRunning = new Gauge({
    name: "ask_answers_running",
    help: "Answers this process is running",
    registers: [this.registry],
  });
  readonly answerRefusals = new Counter({
    name: "ask_refusals_total",
    help: "Asks refused before they started, by limit (user, replica, question)",
    labelNames: ["limit"],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /**
   * One of search's two page caches (the float32 vectors, `page_vector_cache_*`; the compact codes,
   * `page_code_cache_*`), read from the cache when /metrics is scraped (nothing per search).
   */
  observePageCache(
    prefix: "page_vector_cache" | "page_code_cache",
    cache: Pick<PageVectorCache, "stats" | "budgetBytes">,
  ): void {
    const held = prefix === "page_vector_cache" ? "vectors" : "compact codes";
    const counter = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    counter(`${prefix}_hits_total`, `Pages whose ${held} a search found in the cache`, () => cache.stats().hits);
    counter(`${prefix}_misses_total`, `Pages whose ${held} a search had to read`, () => cache.stats().misses);
    counter(`${prefix}_evictions_total`, "Pages evicted to stay within the byte budget", () => cache.stats().evictions);
    this.gauge(`${prefix}_bytes`, `Bytes of page ${held} held (with per-entry overhead)`, () => cache.stats().bytes);
    this.gauge(`${prefix}_pages`, "Pages held", () => cache.stats().pages);
    this.gauge(`${prefix}_budget_bytes`, "Its share of SEARCH_CACHE_BYTES", () => cache.budgetBytes);
  }

  /** The settled files searches keep (src/lib/settled-files.ts), read when /metrics is scraped. */
  observeSettledFiles(settled: { stats(): { bases: number; pages: number } }): void {
    this.gauge(
      "settled_file_pages",
      "Pages of the settled files whose documents searches keep",
      () => settled.stats().pages,
    );
    this.gauge("settled_file_bases", "Knowledge bases with settled files kept", () => settled.stats().bases);
  }

  /** A gauge read from `read` when /metrics is scraped. */
  private gauge(name: string, help: string, read: () => number): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /**
   * The label for an operation name, bounded in cardinality and length. Only operations that
   * validated against the schema get their own name; a document that did not is `invalid`, so
   * junk names can neither grow /metrics nor use up the distinct names real operations need.
   */
  operationLabel(name: string | null | undefined, validated = true): string {
    if (!validated) return "invalid";
    if (!name) return "anonymous";
    if (name.length > MAX_OPERATION_NAME_LENGTH) return "other";
    if (this.names.has(name)) return name;
    if (this.names.size >= MAX_OPERATION_NAMES) return "other";
    this.names.add(name);
    return name;
  }

  recordOperation(
    name: string | null | undefined,
    type: string,
    outcome: Outcome,
    seconds: number,
    validated = true,
  ): void {
    const labels = { operation: this.operationLabel(name, validated), type, outcome };
    this.operations.inc(labels);
    this.operationDuration.observe(labels, seconds);
  }
}

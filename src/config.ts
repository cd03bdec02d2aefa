// Environment -> typed, validated config. Defaults are the seed's (database `layra`, bucket
// `layra-bucket`, HNSW M=32); every value can be overridden so the gateway can point at a stock
// LAYRA `.env` (see .env.layra.example). Variable names follow LAYRA's settings where they exist.
import { isIP } from "node:net";
import { z } from "zod";

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/**
 * A store URL, checked the way the driver will read it: it parses, uses one of `protocols`, names a
 * host and, if it has one, a numeric port. `bare` (LAYRA's `host:port` form) gets `bare://` in front
 * first. The message never repeats the value: a URL may carry a password.
 */
function storeUrl(protocols: string[], bare?: string) {
  const example = `${protocols[0]}//host:port`;
  return z.string().superRefine((value, ctx) => {
    const text = bare && !/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? `${bare}//${value}` : value;
    let parsed: URL | null = null;
    try {
      parsed = new URL(text);
    } catch {
      // reported below
    }
    const problem = !parsed
      ? "is not a valid URL"
      : !protocols.includes(parsed.protocol)
        ? `must start with ${protocols.map((p) => `${p}//`).join(" or ")}`
        : parsed.hostname === ""
          ? "has no host"
          : null;
    if (problem) ctx.addIssue({ code: "custom", message: `${problem} (expected ${example}; value not shown)` });
  });
}
const url = storeUrl(["http:", "https:"]);
const redisDb = int(0, 15);
const bool = z.enum(["true", "false", "1", "0"]).transform((value) => value === "true" || value === "1");
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

const envSchema = z
  .object({
    NODE_ENV: z.enum(["production", "development", "test"]).default("development"),
    /** Development binds loopback (GraphiQL there carries a token); production binds every interface. */
    HOST: z.string().min(1).optional(),
    PORT: int(0, 65535).default(4000),

    MONGODB_URL: storeUrl(["mongodb:", "mongodb+srv:"], "mongodb:").default("mongodb://127.0.0.1:27017"),
    MONGODB_ROOT_USERNAME: z.string().optional(),
    MONGODB_ROOT_PASSWORD: z.string().optional(),
    MONGODB_DB: z
      .string()
      .regex(/^[^/\\. "$]{1,63}$/, "must be a valid database name")
      .default("layra"),
    MONGODB_POOL_SIZE: int(1, 1000).default(50),
    MONGODB_MIN_POOL_SIZE: int(0, 1000).default(10),

    MILVUS_URI: url.default("http://127.0.0.1:19530"),
    MILVUS_TOKEN: z.string().optional(),
    MILVUS_DIM: int(1, 32768).default(128),
    MILVUS_HNSW_M: int(2, 2048).default(32),
    MILVUS_HNSW_EF_CONSTRUCTION: int(1, 65535).default(500),
    MILVUS_METRIC_TYPE: z.enum(["IP", "L2", "COSINE"]).default("IP"),

    REDIS_URL: storeUrl(["redis:", "rediss:"], "redis:").default("redis://127.0.0.1:6379"),
    REDIS_PASSWORD: z.string().optional(),
    REDIS_TOKEN_DB: redisDb.default(0),
    REDIS_TASK_DB: redisDb.default(1),
    REDIS_LOCK_DB: redisDb.default(2),
    REDIS_CACHE_DB: redisDb.default(3),

    MINIO_URL: url.default("http://127.0.0.1:9000"),
    MINIO_PUBLIC_URL: url.optional(),
    MINIO_ACCESS_KEY: z.string().min(1),
    MINIO_SECRET_KEY: z.string().min(1),
    MINIO_BUCKET_NAME: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "must be a valid S3 bucket name")
      .default("layra-bucket"),
    MINIO_REGION: z.string().min(1).default("us-east-1"),
    PRESIGNED_URL_EXPIRY_SECONDS: int(1, 7 * 24 * 3600).default(900),

    MODEL_SERVER_URL: url.default("http://127.0.0.1:8005"),
    MODEL_SERVER_TIMEOUT_MS: int(1, 1_200_000).default(30_000),

    SECRET_KEY: z.string().min(1),
    ALGORITHM: z.literal("HS256").default("HS256"),

    STORE_TIMEOUT_MS: int(1, 600_000).default(5_000),

    // Live progress (docs/architecture.md, "Live progress"): keyspace notifications, or one shared
    // poller where CONFIG is forbidden.
    PROGRESS_MODE: z.enum(["auto", "notifications", "poll"]).default("auto"),
    PROGRESS_POLL_INTERVAL_MS: int(50, 60_000).default(500),
    // LAYRA's own SSE reader gives up after 5 polls 1 s apart that find no key.
    PROGRESS_MISSING_KEY_WAIT_MS: int(0, 600_000).default(5_000),
    // Request safety (src/plugins/): every limit applies over HTTP and graphql-ws alike.
    GRAPHQL_MAX_DEPTH: int(1, 1000).default(12),
    GRAPHQL_MAX_ALIASES: int(0, 10_000).default(15),
    // Room for a real screen (20 knowledge bases x 20 files x their pages is about 24,000), not for a crawl.
    GRAPHQL_MAX_COST: int(1, 100_000_000).default(50_000),
    GRAPHQL_MAX_TOKENS: int(1, 1_000_000).default(2_000),
    /** graphql-armor's default: no LAYRA screen uses a directive. */
    GRAPHQL_MAX_DIRECTIVES: int(0, 10_000).default(50),
    /** Fields one operation selects, fragments counted where spread: about ten times LAYRA's largest screen. */
    GRAPHQL_MAX_FIELDS: int(1, 1_000_000).default(200),
    GRAPHQL_MAX_DOCUMENT_BYTES: int(1, 100 * 1024 * 1024).default(32 * 1024),
    MAX_REQUEST_BODY_BYTES: int(1, 1024 * 1024 * 1024).default(1024 * 1024),
    /** What the cost model assumes a list returns when `first`/`last` is not given (and the argument has no default). */
    COST_DEFAULT_PAGE_SIZE: int(1, 100_000).default(20),
    COST_DEFAULT_TOP_K: int(1, 100_000).default(10),
    /** What the cost model assumes for a list field that takes no `first`/`last`/`topK`. */
    COST_DEFAULT_LIST_SIZE: int(1, 100_000).default(20),
    /** Operations per window per user (anonymous callers: per IP address); 0 turns the limit off. */
    RATE_LIMIT_POINTS: int(0, 10_000_000).default(600),
    RATE_LIMIT_ANONYMOUS_POINTS: int(0, 10_000_000).default(120),
    RATE_LIMIT_WINDOW_MS: int(100, 24 * 3600 * 1000).default(60_000),
    /** Keys are `ratelimit:{namespace}:...` in the cache database; replicas that share it share the limit. */
    RATE_LIMIT_NAMESPACE: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, "letters, digits, _ . - only")
      .default("gateway"),
    /** Behind one reverse proxy: take the client address from the last X-Forwarded-For entry. */
    TRUST_PROXY: bool.default("false"),
    /** A JSON manifest {hash: query}: when set, only the operations it lists run. */
    PERSISTED_OPERATIONS_FILE: z.string().optional(),

    // Observability (src/observability/)
    LOG_LEVEL: z.enum(LOG_LEVELS).optional(),
    TRACING_ENABLED: bool.default("false"),
    /** When set, /metrics answers only `Authorization: Bearer <METRICS_TOKEN>` (scrapers on a public port). */
    METRICS_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
    /** How long a cascade may hold its Redis DB 2 lock before another request may take over. */
    LOCK_TTL_MS: int(1_000, 3_600_000).default(120_000),
    /** Comma-separated usernames allowed to run maintenance over every user's data. */
    OPERATOR_USERNAMES: z.string().default(""),
    // Two-stage MaxSim search (docs/architecture.md, "Exact two-stage search"). Milvus caps a search's
    // limit and a query's offset+limit at 16384, and LAYRA's stage 1 takes 50 rows per query vector.
    /** Rows per query vector in stage 1 (Milvus search `limit`). */
    SEARCH_CANDIDATE_LIMIT: int(1, 16384).default(50),
    /**
     * The widest stage 1 may grow to while it cannot yet prove its answer exact (docs/architecture.md,
     * "Exact two-stage search"): the limit is multiplied by 4 per try up to this. Not below the limit.
     */
    SEARCH_CERTIFY_MAX_LIMIT: int(1, 16384).default(4096),
    /** The most pages one search reads and scores exactly per knowledge base on the two-stage path. */
    SEARCH_CERTIFY_MAX_PAGES: int(1, 1_000_000).default(4000),
    /** HNSW `ef` of stage 1; raised to SEARCH_CANDIDATE_LIMIT when below it. */
    SEARCH_EF: int(1, 32768).default(64),
    SEARCH_MAX_TOP_K: int(1, 1000).default(100),
    SEARCH_MAX_QUERY_VECTORS: int(1, 16384).default(1024),
    /** Rows per stage-2 Milvus query; pages are read in windows so none is cut short. */
    SEARCH_QUERY_WINDOW: int(1, 16384).default(16384),

    // Browsers (src/plugins/cors.ts, docs/frontend.md): the origins allowed to call the API from another
    // origin, comma-separated, or `*` for any; empty means same-origin only.
    CORS_ORIGINS: z.string().default(""),
    /** Cookies or HTTP auth from another origin; only with an explicit origin list. */
    CORS_CREDENTIALS: bool.default("false"),
    /** How GraphiQL (development only) runs subscriptions: graphql-ws, or SSE over HTTP. */
    GRAPHIQL_SUBSCRIPTIONS_PROTOCOL: z.enum(["WS", "SSE"]).default("WS"),

    // Page vectors kept in process (src/lib/page-vector-cache.ts); 0 turns the cache off. A base
    // whose pages fit in half of it is searched exactly in memory, without a stage-1 search.
    SEARCH_CACHE_BYTES: int(0, Number.MAX_SAFE_INTEGER).default(256 * 1024 * 1024),

    // Upload and ingestion over LAYRA's Kafka queue (docs/ingestion.md). Names follow LAYRA's settings.
    /** Comma-separated `host:port` list (LAYRA's KAFKA_BROKER_URL). */
    KAFKA_BROKER_URL: z.string().min(1).default("127.0.0.1:9094"),
    KAFKA_TOPIC: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,249}$/, "must be a valid Kafka topic name")
      .default("task_generation"),
    KAFKA_GROUP_ID: z.string().min(1).default("task_consumer_group"),
    /** Where the worker forwards messages it does not handle (LAYRA's workflow messages) before committing them. */
    KAFKA_UNHANDLED_TOPIC: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,249}$/, "must be a valid Kafka topic name")
      .default("task_generation_unhandled"),
    KAFKA_CLIENT_ID: z.string().min(1).default("layra-gateway"),
    /** How long the group waits for a silent worker before giving its partitions to the others. */
    KAFKA_SESSION_TIMEOUT_MS: int(6_000, 1_800_000).default(45_000),
    /**
     * How long the worker keeps trying to rejoin its group after losing Kafka (a broker restart), with
     * backoff; past it the process exits non-zero so its supervisor restarts it.
     */
    KAFKA_RECONNECT_PATIENCE_MS: int(1_000, 24 * 3_600_000).default(300_000),
    UPLOAD_MAX_FILES: int(1, 1000).default(50),
    UPLOAD_MAX_FILE_BYTES: int(1, 5 * 1024 * 1024 * 1024).default(200 * 1024 * 1024),
    /** A multipart upload body larger than this is refused before it is read; bigger files use createUploadUrls. */
    UPLOAD_MAX_REQUEST_BYTES: int(1, 1024 * 1024 * 1024).default(50 * 1024 * 1024),
    /**
     * Multipart uploads read or run at once (each held in memory up to UPLOAD_MAX_REQUEST_BYTES), per
     * process and per user in a process; past them an upload is refused before its body is read.
     */
    UPLOAD_MAX_CONCURRENT: int(1, 10_000).default(8),
    UPLOAD_MAX_CONCURRENT_PER_USER: int(1, 10_000).default(2),
    UPLOAD_URL_EXPIRY_SECONDS: int(10, 7 * 24 * 3600).default(900),
    /**
     * Temp knowledge bases (one Milvus collection each) a user may have: every chat upload makes one,
     * kept until its conversation is deleted or the orphan cleanup removes it.
     */
    CHAT_UPLOAD_MAX_TEMP_BASES: int(1, 1_000_000).default(500),
    // Presigned uploads that are never committed (docs/ingestion.md): an upload can be committed until
    // UPLOAD_URL_EXPIRY_SECONDS + UPLOAD_COMMIT_GRACE_SECONDS after createUploadUrls; then a sweep
    // (src/resolvers/ingestion/upload-sweep.ts) removes its objects. Every gateway replica sweeps; claims
    // are exact, so they never collide.
    /** How long after its URLs expire an upload may still be committed (a PUT that started just in time). */
    UPLOAD_COMMIT_GRACE_SECONDS: int(0, 24 * 3600).default(300),
    /** How often each gateway process sweeps (0: never; then run `npm run maintenance` from cron). */
    UPLOAD_SWEEP_INTERVAL_SECONDS: int(0, 24 * 3600).default(60),
    /** The most uploads one sweep takes. */
    UPLOAD_SWEEP_BATCH: int(1, 10_000).default(100),
    /** How long one sweeper owns an upload it took; a removal that failed is retried once it lapses. */
    UPLOAD_SWEEP_RETRY_SECONDS: int(1, 24 * 3600).default(300),
    EMBEDDING_IMAGE_DPI: int(10, 1200).default(200),
    /** Pages per /embed_image request, so a long document never sits in memory whole. */
    EMBEDDING_BATCH_PAGES: int(1, 1000).default(8),
    PDFTOPPM_PATH: z.string().min(1).default("pdftoppm"),
    /** Poppler's pdfinfo, which reads a PDF's page count and page sizes before anything is rendered. */
    PDFINFO_PATH: z.string().min(1).default("pdfinfo"),
    // Rendering bounds (docs/ingestion.md, "Rendering bounds"): a small file can describe huge or
    // countless pages, so both are checked before rendering and every renderer run is time-limited.
    /** A PDF with more pages fails before any page is rendered. */
    RENDER_MAX_PAGES: int(1, 100_000).default(5_000),
    /** The most pixels one page image may have; a larger page is rendered below EMBEDDING_IMAGE_DPI to fit (A3 at 200 DPI fits). */
    RENDER_MAX_PAGE_PIXELS: int(10_000, 100_000_000).default(8_000_000),
    /** How long one page may take to render (a run of n pages gets n times this; reading the page list, once this). */
    RENDER_PAGE_TIMEOUT_MS: int(100, 3_600_000).default(60_000),
    /** LibreOffice for office formats; when it cannot be run such files fail with a message naming it. */
    SOFFICE_PATH: z.string().min(1).default("soffice"),
    /** Attempts per file when a store or the model server fails (a broken file fails at once). */
    INGEST_MAX_ATTEMPTS: int(1, 100).default(3),
    /**
     * How long one batch of pages keeps retrying an unreachable or failing model server (exponential
     * backoff up to 10 s apart) before the attempt fails: long enough to ride out a model-server restart.
     */
    MODEL_RETRY_PATIENCE_MS: int(0, 3_600_000).default(60_000),
    /** The worker's /health and /metrics port (0: any free port). */
    WORKER_PORT: int(0, 65535).default(4001),

    // Security and resource bounds (docs/security.md).
    /** How long one store-probe result answers /readiness and `health` (one probe in flight at a time). */
    READINESS_CACHE_MS: int(0, 60_000).default(1_000),
    /** The largest response body (HTTP) or message (graphql-ws) the gateway sends; larger is LIMIT_EXCEEDED. */
    MAX_RESPONSE_BYTES: int(1024, 1024 * 1024 * 1024).default(8 * 1024 * 1024),
    /** Subscription messages a WebSocket may have waiting for a client that does not read; past it the connection is dropped. */
    WS_MAX_BUFFERED_BYTES: int(1024, 1024 * 1024 * 1024).default(16 * 1024 * 1024),
    /** Operations one WebSocket may have running (subscriptions open included); past it a subscribe is refused. */
    WS_MAX_OPERATIONS: int(1, 100_000).default(100),
    /** The longest list any argument (or a list nested in one) may carry. */
    MAX_INPUT_LIST_LENGTH: int(1, 1_000_000).default(1_024),
    /** The longest text `query` a search embeds; its token vectors are bounded by SEARCH_MAX_QUERY_VECTORS too. */
    SEARCH_MAX_QUERY_CHARS: int(1, 1_000_000).default(2_000),
    /** How often an open subscription re-checks that its token still exists (logout ends it). */
    TOKEN_RECHECK_MS: int(100, 3_600_000).default(5_000),

    // Answers (`ask`, docs/ask.md): the chat model named by a conversation's model settings, called with the
    // openai SDK through src/stores/outbound-fetch.ts.
    /**
     * Comma-separated CIDRs, IP addresses or host names the chat model may be reached at although they are
     * private, loopback, link-local or otherwise internal (refused by default: `model_url` comes from users).
     */
    CHAT_MODEL_ALLOWED_HOSTS: z.string().default(""),
    /** How long the chat model may take to answer a request's headers (the SDK's timeout; streaming is bounded by ASK_MAX_DURATION_MS). */
    CHAT_MODEL_TIMEOUT_MS: int(100, 600_000).default(60_000),
    /** Redirects followed per model request, each checked like the first URL. */
    CHAT_MODEL_MAX_REDIRECTS: int(0, 20).default(3),
    /** The longest question `ask` takes (default: SEARCH_MAX_QUERY_CHARS); retrieval embeds it, so it may not exceed that. */
    ASK_MAX_QUESTION_CHARS: int(1, 1_000_000).optional(),
    /** Answers one user may have running at once, across replicas (counted in the cache database). */
    ASK_MAX_ANSWERS_PER_USER: int(1, 10_000).default(3),
    /** Answers one gateway process runs at once. */
    ASK_MAX_ANSWERS_PER_REPLICA: int(1, 100_000).default(64),
    /** The longest an answer may run, retrieval and model included; then it is saved as cut by the gateway. */
    ASK_MAX_DURATION_MS: int(1_000, 3_600_000).default(300_000),
    /** LAYRA's MAX_PARENT_DEPTH: history messages (two per turn) walked up the parent chain; 5 reaches 3 turns. */
    ASK_HISTORY_DEPTH: int(0, 1_000).default(5),
    /** A page image larger than this many pixels is scaled down before it is sent (a 200 DPI A4 page is 3.9 M). */
    ASK_IMAGE_MAX_PIXELS: int(4_096, 100_000_000).default(4_000_000),
    /** The largest page image (PNG bytes) sent; larger ones are scaled down until they fit. */
    ASK_IMAGE_MAX_BYTES: int(1_024, 100 * 1024 * 1024).default(4 * 1024 * 1024),
    /** The page-image bytes one prompt may carry in all, history included; shared equally by its images. */
    ASK_PROMPT_MAX_IMAGE_BYTES: int(1_024, 1024 * 1024 * 1024).default(24 * 1024 * 1024),
    /** Events an answer's Redis stream keeps for followers (deltas written while a write is pending are merged). */
    ASK_STREAM_MAX_EVENTS: int(16, 1_000_000).default(10_000),
    /** How long an answer's events stay readable after its last one (resume by message id). */
    ASK_STREAM_TTL_SECONDS: int(10, 7 * 24 * 3600).default(3_600),
    /** How often a running answer checks for a stop asked on another replica. */
    ASK_STOP_POLL_MS: int(20, 60_000).default(250),
    /** Scaled-down page images kept in memory by object key and bound, so an answer reuses another's work; 0: none. */
    ASK_IMAGE_CACHE_BYTES: int(0, 4 * 1024 * 1024 * 1024).default(64 * 1024 * 1024),
    /** On shutdown, how long running answers may go on before they are stopped and saved as aborted. */
    ASK_DRAIN_MS: int(0, 600_000).default(10_000),
  })
  .superRefine((env, ctx) => {
    if (env.MONGODB_MIN_POOL_SIZE > env.MONGODB_POOL_SIZE) {
      ctx.addIssue({ code: "custom", path: ["MONGODB_MIN_POOL_SIZE"], message: "must not exceed MONGODB_POOL_SIZE" });
    }
    const dbs = [env.REDIS_TOKEN_DB, env.REDIS_TASK_DB, env.REDIS_LOCK_DB, env.REDIS_CACHE_DB];
    if (new Set(dbs).size !== dbs.length) {
      ctx.addIssue({ code: "custom", path: ["REDIS_CACHE_DB"], message: "the four Redis databases must be distinct" });
    }
    if (env.SEARCH_MAX_QUERY_VECTORS > env.MAX_INPUT_LIST_LENGTH) {
      ctx.addIssue({
        code: "custom",
        path: ["SEARCH_MAX_QUERY_VECTORS"],
        message: "must not exceed MAX_INPUT_LIST_LENGTH",
      });
    }
    const origins = commaList(env.CORS_ORIGINS);
    for (const origin of origins) {
      if (origin !== "*" && !isOrigin(origin)) {
        ctx.addIssue({
          code: "custom",
          path: ["CORS_ORIGINS"],
          message: `${JSON.stringify(origin)} is not an origin (scheme://host[:port], no path)`,
        });
      }
    }
    if (env.CORS_CREDENTIALS && (origins.length === 0 || origins.includes("*"))) {
      ctx.addIssue({
        code: "custom",
        path: ["CORS_CREDENTIALS"],
        message: "needs an explicit CORS_ORIGINS list (never `*` with credentials)",
      });
    }
    if (env.KAFKA_UNHANDLED_TOPIC === env.KAFKA_TOPIC) {
      ctx.addIssue({ code: "custom", path: ["KAFKA_UNHANDLED_TOPIC"], message: "must differ from KAFKA_TOPIC" });
    }
    if (env.ASK_MAX_QUESTION_CHARS !== undefined && env.ASK_MAX_QUESTION_CHARS > env.SEARCH_MAX_QUERY_CHARS) {
      ctx.addIssue({
        code: "custom",
        path: ["ASK_MAX_QUESTION_CHARS"],
        message: "must not exceed SEARCH_MAX_QUERY_CHARS (the question is embedded for retrieval)",
      });
    }
    for (const entry of commaList(env.CHAT_MODEL_ALLOWED_HOSTS)) {
      if (!isHostOrNetwork(entry))
        ctx.addIssue({
          code: "custom",
          path: ["CHAT_MODEL_ALLOWED_HOSTS"],
          message: `${JSON.stringify(entry)} is not a CIDR, an IP address or a host name`,
        });
    }
    if (env.GRAPHQL_MAX_DOCUMENT_BYTES > env.MAX_REQUEST_BODY_BYTES) {
      ctx.addIssue({
        code: "custom",
        path: ["GRAPHQL_MAX_DOCUMENT_BYTES"],
        message: "must not exceed MAX_REQUEST_BODY_BYTES",
      });
    }
  });

type Env = z.output<typeof envSchema>;

/** The non-empty entries of a comma-separated variable, trimmed. */
function commaList(value: string): string[] {
  return value
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean);
}

/** A CIDR (`10.0.0.0/8`), an IP address or a host name (letters, digits, dots and dashes). */
function isHostOrNetwork(value: string): boolean {
  const [address, prefix, ...rest] = value.split("/");
  if (rest.length > 0 || !address) return false;
  const family = isIP(address);
  if (prefix !== undefined) return family !== 0 && /^\d+$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
  return family !== 0 || /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(address);
}

/** `scheme://host[:port]` exactly as a browser sends it in the Origin header. */
function isOrigin(value: string): boolean {
  try {
    return new URL(value).origin === value;
  } catch {
    return false;
  }
}

/** LAYRA's MONGODB_URL is `host:port` with the root user in separate variables; a full URI also works. */
function mongoUrl(env: Env): string {
  const base = /^mongodb(\+srv)?:\/\//.test(env.MONGODB_URL) ? env.MONGODB_URL : `mongodb://${env.MONGODB_URL}`;
  if (!env.MONGODB_ROOT_USERNAME) return base;
  const parsed = new URL(base);
  parsed.username = encodeURIComponent(env.MONGODB_ROOT_USERNAME);
  parsed.password = encodeURIComponent(env.MONGODB_ROOT_PASSWORD ?? "");
  return parsed.toString();
}

function redisUrl(env: Env): string {
  return /^rediss?:\/\//.test(env.REDIS_URL) ? env.REDIS_URL : `redis://${env.REDIS_URL}`;
}

/** The checked variables placed in the nested shape the code reads; `Config` is its output type. */
const configSchema = envSchema.transform((env) => {
  const endpoint = new URL(env.MINIO_URL);
  // Typed, or the literal defaults would widen `Config['logLevel']` to string.
  const logLevel: (typeof LOG_LEVELS)[number] = env.LOG_LEVEL ?? (env.NODE_ENV === "test" ? "silent" : "info");
  return {
    env: env.NODE_ENV,
    host: env.HOST ?? (env.NODE_ENV === "production" ? "0.0.0.0" : "127.0.0.1"),
    port: env.PORT,
    mongo: {
      url: mongoUrl(env),
      database: env.MONGODB_DB,
      maxPoolSize: env.MONGODB_POOL_SIZE,
      minPoolSize: env.MONGODB_MIN_POOL_SIZE,
    },
    milvus: {
      address: env.MILVUS_URI,
      token: env.MILVUS_TOKEN,
      dim: env.MILVUS_DIM,
      hnswM: env.MILVUS_HNSW_M,
      efConstruction: env.MILVUS_HNSW_EF_CONSTRUCTION,
      metricType: env.MILVUS_METRIC_TYPE,
    },
    redis: {
      url: redisUrl(env),
      password: env.REDIS_PASSWORD,
      db: { token: env.REDIS_TOKEN_DB, task: env.REDIS_TASK_DB, lock: env.REDIS_LOCK_DB, cache: env.REDIS_CACHE_DB },
    },
    s3: {
      endpoint,
      publicEndpoint: env.MINIO_PUBLIC_URL ? new URL(env.MINIO_PUBLIC_URL) : endpoint,
      accessKey: env.MINIO_ACCESS_KEY,
      secretKey: env.MINIO_SECRET_KEY,
      bucket: env.MINIO_BUCKET_NAME,
      region: env.MINIO_REGION,
      presignExpirySeconds: env.PRESIGNED_URL_EXPIRY_SECONDS,
    },
    model: {
      url: env.MODEL_SERVER_URL.replace(/\/+$/, ""),
      timeoutMs: env.MODEL_SERVER_TIMEOUT_MS,
      retryPatienceMs: env.MODEL_RETRY_PATIENCE_MS,
    },
    auth: { secretKey: env.SECRET_KEY, algorithm: env.ALGORITHM },
    storeTimeoutMs: env.STORE_TIMEOUT_MS,
    progress: {
      mode: env.PROGRESS_MODE,
      pollIntervalMs: env.PROGRESS_POLL_INTERVAL_MS,
      missingKeyWaitMs: env.PROGRESS_MISSING_KEY_WAIT_MS,
    },
    limits: {
      maxDepth: env.GRAPHQL_MAX_DEPTH,
      maxAliases: env.GRAPHQL_MAX_ALIASES,
      maxCost: env.GRAPHQL_MAX_COST,
      maxTokens: env.GRAPHQL_MAX_TOKENS,
      maxDirectives: env.GRAPHQL_MAX_DIRECTIVES,
      maxFields: env.GRAPHQL_MAX_FIELDS,
      maxDocumentBytes: env.GRAPHQL_MAX_DOCUMENT_BYTES,
      maxRequestBodyBytes: env.MAX_REQUEST_BODY_BYTES,
      maxUploadRequestBytes: env.UPLOAD_MAX_REQUEST_BYTES,
      defaultPageSize: env.COST_DEFAULT_PAGE_SIZE,
      defaultTopK: env.COST_DEFAULT_TOP_K,
      defaultListSize: env.COST_DEFAULT_LIST_SIZE,
      maxInputListLength: env.MAX_INPUT_LIST_LENGTH,
      maxResponseBytes: env.MAX_RESPONSE_BYTES,
      maxSocketBufferBytes: env.WS_MAX_BUFFERED_BYTES,
      maxSocketOperations: env.WS_MAX_OPERATIONS,
    },
    rateLimit: {
      points: env.RATE_LIMIT_POINTS,
      anonymousPoints: env.RATE_LIMIT_ANONYMOUS_POINTS,
      windowMs: env.RATE_LIMIT_WINDOW_MS,
      namespace: env.RATE_LIMIT_NAMESPACE,
      trustProxy: env.TRUST_PROXY,
    },
    /** Introspection, GraphiQL and field suggestions: on in development and test, off in production. */
    introspection: env.NODE_ENV !== "production",
    persistedOperationsFile: env.PERSISTED_OPERATIONS_FILE,
    cors: { origins: commaList(env.CORS_ORIGINS), credentials: env.CORS_CREDENTIALS },
    graphiql: { subscriptionsProtocol: env.GRAPHIQL_SUBSCRIPTIONS_PROTOCOL },
    logLevel,
    tracing: { enabled: env.TRACING_ENABLED },
    metricsToken: env.METRICS_TOKEN,
    lockTtlMs: env.LOCK_TTL_MS,
    operatorUsernames: new Set(commaList(env.OPERATOR_USERNAMES)),
    readinessCacheMs: env.READINESS_CACHE_MS,
    tokenRecheckMs: env.TOKEN_RECHECK_MS,
    search: {
      candidateLimit: env.SEARCH_CANDIDATE_LIMIT,
      certifyMaxLimit: Math.max(env.SEARCH_CERTIFY_MAX_LIMIT, env.SEARCH_CANDIDATE_LIMIT),
      certifyMaxPages: env.SEARCH_CERTIFY_MAX_PAGES,
      ef: Math.max(env.SEARCH_EF, env.SEARCH_CANDIDATE_LIMIT),
      maxTopK: env.SEARCH_MAX_TOP_K,
      maxQueryVectors: env.SEARCH_MAX_QUERY_VECTORS,
      maxQueryChars: env.SEARCH_MAX_QUERY_CHARS,
      queryWindow: env.SEARCH_QUERY_WINDOW,
      cacheBytes: env.SEARCH_CACHE_BYTES,
    },
    kafka: {
      brokers: env.KAFKA_BROKER_URL.split(",")
        .map((broker) => broker.trim().replace(/^[a-z]+:\/\//i, ""))
        .filter(Boolean),
      topic: env.KAFKA_TOPIC,
      groupId: env.KAFKA_GROUP_ID,
      unhandledTopic: env.KAFKA_UNHANDLED_TOPIC,
      clientId: env.KAFKA_CLIENT_ID,
      sessionTimeoutMs: env.KAFKA_SESSION_TIMEOUT_MS,
      reconnectPatienceMs: env.KAFKA_RECONNECT_PATIENCE_MS,
    },
    upload: {
      maxFiles: env.UPLOAD_MAX_FILES,
      maxFileBytes: env.UPLOAD_MAX_FILE_BYTES,
      maxRequestBytes: env.UPLOAD_MAX_REQUEST_BYTES,
      urlExpirySeconds: env.UPLOAD_URL_EXPIRY_SECONDS,
      maxTempBases: env.CHAT_UPLOAD_MAX_TEMP_BASES,
      maxConcurrentUploads: env.UPLOAD_MAX_CONCURRENT,
      maxConcurrentUploadsPerUser: env.UPLOAD_MAX_CONCURRENT_PER_USER,
    },
    uploadSweep: {
      commitGraceSeconds: env.UPLOAD_COMMIT_GRACE_SECONDS,
      intervalMs: env.UPLOAD_SWEEP_INTERVAL_SECONDS * 1000,
      batchSize: env.UPLOAD_SWEEP_BATCH,
      claimMs: env.UPLOAD_SWEEP_RETRY_SECONDS * 1000,
    },
    chatModel: {
      allowedHosts: commaList(env.CHAT_MODEL_ALLOWED_HOSTS),
      timeoutMs: env.CHAT_MODEL_TIMEOUT_MS,
      maxRedirects: env.CHAT_MODEL_MAX_REDIRECTS,
    },
    ask: {
      maxQuestionChars: env.ASK_MAX_QUESTION_CHARS ?? env.SEARCH_MAX_QUERY_CHARS,
      maxAnswersPerUser: env.ASK_MAX_ANSWERS_PER_USER,
      maxAnswersPerReplica: env.ASK_MAX_ANSWERS_PER_REPLICA,
      maxDurationMs: env.ASK_MAX_DURATION_MS,
      historyDepth: env.ASK_HISTORY_DEPTH,
      imageMaxPixels: env.ASK_IMAGE_MAX_PIXELS,
      imageMaxBytes: env.ASK_IMAGE_MAX_BYTES,
      promptMaxImageBytes: env.ASK_PROMPT_MAX_IMAGE_BYTES,
      streamMaxEvents: env.ASK_STREAM_MAX_EVENTS,
      streamTtlSeconds: env.ASK_STREAM_TTL_SECONDS,
      stopPollMs: env.ASK_STOP_POLL_MS,
      imageCacheBytes: env.ASK_IMAGE_CACHE_BYTES,
      drainMs: env.ASK_DRAIN_MS,
    },
    ingest: {
      dpi: env.EMBEDDING_IMAGE_DPI,
      batchPages: env.EMBEDDING_BATCH_PAGES,
      pdftoppmPath: env.PDFTOPPM_PATH,
      pdfinfoPath: env.PDFINFO_PATH,
      maxPages: env.RENDER_MAX_PAGES,
      maxPagePixels: env.RENDER_MAX_PAGE_PIXELS,
      pageTimeoutMs: env.RENDER_PAGE_TIMEOUT_MS,
      sofficePath: env.SOFFICE_PATH,
      maxAttempts: env.INGEST_MAX_ATTEMPTS,
      workerPort: env.WORKER_PORT,
    },
  };
});

export type Config = z.output<typeof configSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join("\n")}`);
  }
}

/** For the process entries: the config, or one line per problem on stderr and exit code 1. */
export function loadConfigOrExit(source: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(source);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(1);
  }
}

export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable means "not set", as in a .env file with `KEY=`.
  const present = Object.fromEntries(Object.entries(source).filter(([, value]) => value !== undefined && value !== ""));
  const parsed = configSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join(".") || "environment"}: ${issue.message}`),
    );
  }
  return parsed.data;
}

// buildApp(config): the stores, the Yoga server with graphql-ws on the same port and path, and the
// liveness/readiness routes. main.ts only starts it; tests boot it on a random port.
import { randomUUID, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { createYoga, type YogaServerInstance } from "graphql-yoga";
import { useServer } from "graphql-ws/use/ws";
import { WebSocket, WebSocketServer } from "ws";
import { GraphQLError, type ExecutionArgs } from "graphql";
import type { Config } from "./config.js";
import type { Context } from "./context.js";
import { createLoaders } from "./loaders/index.js";
import { createLogger, yogaLogger, type Logger } from "./observability/logger.js";
import { Metrics } from "./observability/metrics.js";
import { runObserved } from "./observability/scope.js";
import { noTracing, openTelemetryHooks, type TracingHooks } from "./observability/tracing.js";
import { createPlugins } from "./plugins/index.js";
import { createLive, type Live } from "./live/index.js";
import { subscriptionStream } from "./live/shared-events.js";
import { socketStream } from "./live/socket-stream.js";
import { corsOptions } from "./plugins/cors.js";
import { graphiqlOptions, graphiqlRenderer, type GraphiQLSettings } from "./server/graphiql.js";
import { checkRegistered, verifyBearer } from "./resolvers/auth.js";
import { healthReport, publicHealth, type HealthReport } from "./resolvers/health.js";
import { scheduleUploadSweeps } from "./resolvers/ingestion/upload-sweep.js";
import { schema } from "./schema/index.js";
import { closeStores, createStores, type Stores } from "./stores/index.js";

type ServerContext = { req?: IncomingMessage; connectionParams?: Record<string, unknown> };

/** A header's value from a plain object of headers, whatever the case of its name. */
function headerIn(headers: unknown, name: string): unknown {
  if (!headers || typeof headers !== "object") return undefined;
  const key = Object.keys(headers).find((candidate) => candidate.toLowerCase() === name);
  return key === undefined ? undefined : (headers as Record<string, unknown>)[key];
}

export interface App {
  config: Config;
  stores: Stores;
  live: Live;
  yoga: YogaServerInstance<ServerContext, Context>;
  server: Server;
  logger: Logger;
  metrics: Metrics;
  /** Listens on config.port (0 = a random free port) and resolves with the base URL. */
  start(): Promise<string>;
  /** Resolves once Mongo has every index of INDEX_PLAN (stores/mongo.ts); retried in the background until then. */
  indexesReady: Promise<void>;
  stop(): Promise<void>;
}

/**
 * The Authorization value of one operation. HTTP and SSE: the request header. graphql-ws: the
 * operation's own `extensions.headers` (where GraphiQL puts the headers of its editor), else the
 * connection's `connectionParams` (where client libraries put it). Read for every operation.
 */
function authorizationOf(
  initial: ServerContext & { request?: Request; params?: { extensions?: Record<string, unknown> } },
): unknown {
  if (initial.request) return initial.request.headers.get("authorization") ?? undefined;
  return (
    headerIn(initial.params?.extensions?.headers, "authorization") ??
    headerIn(initial.connectionParams, "authorization")
  );
}

export interface AppOptions {
  /** The structured logger (default: pino to stdout at LOG_LEVEL); tests pass one to capture it. */
  logger?: Logger;
  /** Tracing hooks (default: OpenTelemetry's API when TRACING_ENABLED, else none). */
  tracing?: TracingHooks;
  /** What GraphiQL opens with in development (`npm start` passes the demo user's header). */
  graphiql?: GraphiQLSettings;
}

/** Compares in constant time, so the token cannot be guessed byte by byte from response times. */
function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function buildApp(config: Config, stores: Stores = createStores(config), options: AppOptions = {}): App {
  const logger = options.logger ?? createLogger(config);
  const live = createLive(config, stores);
  const metrics = new Metrics();
  metrics.observePageVectorCache(stores.milvus.pageVectorCache);
  const observation = {
    metrics,
    tracing: options.tracing ?? (config.tracing.enabled ? openTelemetryHooks() : noTracing),
  };
  // Limits, rate limit, CSRF, error policy, persisted operations, logs, metrics: src/plugins/.
  const gatewayPlugins = createPlugins(config, { stores, logger, observation });
  const yoga = createYoga<ServerContext, Context>({
    schema,
    graphiql: graphiqlOptions(config, schema, options.graphiql),
    renderGraphiQL: graphiqlRenderer(),
    landingPage: false,
    cors: corsOptions(config.cors),
    plugins: gatewayPlugins.plugins,
    batching: false,
    // The error policy (src/plugins/errors.ts) masks everything Yoga's masking would, once.
    maskedErrors: false,
    // Multipart uploads are held to their own limit by the limits plugin before the body is read.
    maxRequestBodySize: Math.max(config.limits.maxRequestBodyBytes, config.limits.maxUploadRequestBytes),
    logging: yogaLogger(logger),
    context: async (initial) => {
      const claims = await verifyBearer(config, authorizationOf(initial));
      // The rate-limit count and the token check go to Redis together: one round trip per operation.
      const rateLimit = gatewayPlugins.rateLimiter.start(claims.username, initial.req);
      const auth = await checkRegistered(stores, claims);
      return {
        rateLimit,
        config,
        stores,
        live,
        viewer: auth.viewer,
        authError: auth.error,
        loaders: createLoaders(stores, auth.viewer),
        // Set by the observability plugin when the operation was parsed.
        requestId: (initial as { requestId?: string }).requestId ?? randomUUID(),
      };
    },
  });

  const server = createServer((req, res) => {
    routeOperational(req, res).then((handled) => {
      if (!handled) void yoga(req, res);
    });
  });
  // Node closes an idle keep-alive connection after 5 s, about when clients and load balancers reuse
  // it, and the request then sent on it fails with ECONNRESET. Keep idle connections longer than
  // they do (the usual 60 s), so the client is the one that closes them.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  // Each probed report is logged once when a store is down (reports are shared for READINESS_CACHE_MS).
  let lastLogged: HealthReport | null = null;
  const logUnready = (report: HealthReport) => {
    if (report.ready || report === lastLogged) return;
    lastLogged = report;
    const down = report.stores.filter((store) => !store.up).map(({ store, error }) => ({ store, error }));
    logger.warn({ down }, "readiness: stores down");
  };

  async function routeOperational(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/") {
      // Newcomers open the bare address: the API (and GraphiQL in development) is at /graphql.
      res.writeHead(302, { location: yoga.graphqlEndpoint }).end();
      return true;
    }
    if (path === "/health") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ status: "ok" }));
      return true;
    }
    if (path === "/metrics") {
      if (config.metricsToken && !sameSecret(req.headers.authorization ?? "", `Bearer ${config.metricsToken}`)) {
        res.writeHead(401, { "www-authenticate": "Bearer" }).end();
        return true;
      }
      res.writeHead(200, { "content-type": metrics.registry.contentType }).end(await metrics.registry.metrics());
      return true;
    }
    if (path === "/readiness") {
      const report = await runObserved(observation, () => healthReport({ config, stores }));
      logUnready(report);
      res
        .writeHead(report.ready ? 200 : 503, { "content-type": "application/json" })
        .end(JSON.stringify(publicHealth(report)));
      return true;
    }
    return false;
  }

  // Indexes are ensured in the background and retried until Mongo answers: start-up never waits on Mongo.
  let indexRetry: NodeJS.Timeout | undefined;
  let stopped = false;
  let stopUploadSweeps = async () => {};
  let markIndexesReady = () => {};
  const indexesReady = new Promise<void>((resolve) => (markIndexesReady = resolve));
  const ensureIndexes = (delayMs: number) => {
    stores.mongo.ensureIndexes().then(markIndexesReady, () => {
      if (stopped) return;
      indexRetry = setTimeout(() => ensureIndexes(Math.min(delayMs * 2, 60_000)), delayMs);
      indexRetry.unref();
    });
  };

  // Upgrades are routed here rather than by `ws` listening on the server itself, which would also
  // re-emit the server's own errors (a port in use) as WebSocket-server errors.
  // Without permessage-deflate, ws writes every frame to the connection at once, in send order, so a
  // frame written straight to the connection (subscription events) keeps its place among them.
  const wsServer = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: config.limits.maxRequestBodyBytes,
  });
  const connections = new WeakMap<WebSocket, Duplex>();
  server.on("upgrade", (req, socket, head) => {
    if ((req.url ?? "").split("?")[0] !== yoga.graphqlEndpoint) {
      socket.end("HTTP/1.1 400 Bad Request\r\n\r\n");
      return;
    }
    wsServer.handleUpgrade(req, socket, head, (ws) => {
      connections.set(ws, socket);
      wsServer.emit("connection", ws, req);
    });
  });
  wsServer.on("connection", (socket) => {
    metrics.wsConnections.inc();
    socket.once("close", () => metrics.wsConnections.dec());
  });
  /** A subscription's results go straight to its connection (src/live/socket-stream.ts); a refusal stays a result. */
  const subscribeOnSocket =
    (subscribe: (args: ExecutionArgs) => unknown, socket: WebSocket, id: string) => async (args: ExecutionArgs) => {
      const result = await subscribe(args);
      const stream = subscriptionStream(result);
      if (!stream) return result;
      const connection = connections.get(socket)!; // every socket came through the upgrade handler
      return socketStream(stream, id, (frame) => {
        if (socket.readyState !== WebSocket.OPEN) return;
        // Writes do not wait for the client: one that stops reading would have the gateway keep every
        // later event for it. Past the bound it is dropped (its streams end; a client reconnects).
        const waiting = connection.writableLength;
        if (waiting > config.limits.maxSocketBufferBytes) {
          logger.warn({ waitingBytes: waiting }, "WebSocket dropped: its client stopped reading");
          socket.terminate();
          return;
        }
        connection.write(frame);
      });
    };
  const wsDisposer = useServer(
    {
      execute: (args) => (args.rootValue as { execute: (a: ExecutionArgs) => unknown }).execute(args) as never,
      subscribe: (args) => (args.rootValue as { subscribe: (a: ExecutionArgs) => unknown }).subscribe(args) as never,
      onSubscribe: async (ctx, id, params) => {
        // Envelop plugins (auth, limits, masking) apply to WebSocket operations as they do to HTTP.
        const {
          schema: envelopedSchema,
          execute,
          subscribe,
          contextFactory,
          parse,
          validate,
        } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
        });
        const flooded = await gatewayPlugins.refuseFlood(ctx.extra.request);
        if (flooded) return [flooded];
        let document;
        try {
          // With persisted operations on, the query comes from the manifest (by hash) or must be listed.
          document = parse(gatewayPlugins.persisted ? gatewayPlugins.persisted.resolve(params) : params.query);
        } catch (error) {
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
        const errors = validate(envelopedSchema, document);
        if (errors.length > 0) return errors;
        return {
          schema: envelopedSchema,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe: subscribeOnSocket(subscribe, ctx.extra.socket, id) },
        };
      },
    },
    wsServer,
  );

  return {
    config,
    stores,
    live,
    yoga,
    server,
    logger,
    metrics,
    start: async () => {
      // A port in use (EADDRINUSE) rejects instead of leaving start() pending forever.
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(config.port, config.host, () => {
          server.off("error", reject);
          resolve();
        });
      });
      ensureIndexes(1_000);
      // Objects of presigned uploads never committed (docs/ingestion.md); every replica may sweep.
      stopUploadSweeps = scheduleUploadSweeps({ config, stores }, observation, logger);
      const { port } = server.address() as AddressInfo;
      const host = config.host === "0.0.0.0" ? "127.0.0.1" : config.host;
      return `http://${host}:${port}`;
    },
    indexesReady,
    stop: async () => {
      stopped = true;
      clearTimeout(indexRetry);
      await stopUploadSweeps();
      await wsDisposer.dispose();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await live.close();
      await closeStores(stores);
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
    },
  };
}

// graphql-ws on the gateway's port and GraphQL path. Every WebSocket operation runs through
// yoga.getEnveloped, so the plugins (auth, limits, error policy, rate limits, metrics) apply as over
// HTTP; subscription events are written straight to the connection, with a bound on what waits.
import type { Server } from "node:http";
import type { Duplex } from "node:stream";
import { GraphQLError, type ExecutionArgs } from "graphql";
import type { Disposable } from "graphql-ws";
import { useServer } from "graphql-ws/use/ws";
import { WebSocket, WebSocketServer } from "ws";
import type { Config } from "../config.js";
import { LimitExceeded } from "../errors.js";
import { subscriptionStream } from "../live/shared-events.js";
import { socketStream } from "../live/socket-stream.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import type { GatewayPlugins } from "../plugins/index.js";
import type { GatewayYoga } from "./yoga.js";

export interface WebSocketDeps {
  config: Config;
  yoga: GatewayYoga;
  gatewayPlugins: GatewayPlugins;
  logger: Logger;
  metrics: Metrics;
}

/**
 * LIMIT_EXCEEDED when a socket has more than `max` operations in flight, this one included
 * (graphql-ws keeps one entry per operation until it ends); counts no further than the limit.
 */
function operationsOverLimit(inFlight: Record<string, unknown>, max: number): LimitExceeded | null {
  let count = 0;
  for (const _ in inFlight)
    if (++count > max) return new LimitExceeded("operations in flight on this socket", count, max);
  return null;
}

/** Serves graphql-ws on `server`'s upgrades to Yoga's endpoint; dispose() closes every socket. */
export function attachWebSockets(
  server: Server,
  { config, yoga, gatewayPlugins, logger, metrics }: WebSocketDeps,
): Disposable {
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

  return useServer(
    {
      execute: (args) => (args.rootValue as { execute: (a: ExecutionArgs) => unknown }).execute(args) as never,
      subscribe: (args) => (args.rootValue as { subscribe: (a: ExecutionArgs) => unknown }).subscribe(args) as never,
      onSubscribe: async (ctx, id, params) => {
        // First, before any work: one socket sending thousands of subscribes must not hold the process.
        const tooMany = operationsOverLimit(ctx.subscriptions, config.limits.maxSocketOperations);
        if (tooMany) {
          metrics.rejections.inc({ reason: tooMany.limit });
          return [tooMany];
        }
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
}

// The Yoga server of the gateway: the schema, the plugin pipeline (src/plugins/), CORS, GraphiQL and
// the per-operation context. HTTP and SSE reach it from the Node server; graphql-ws through
// yoga.getEnveloped (src/server/websocket.ts).
import { createYoga, type Plugin, type YogaServerInstance } from "graphql-yoga";
import type { Config } from "../config.js";
import type { Context } from "../context.js";
import { yogaLogger, type Logger } from "../observability/logger.js";
import { corsOptions } from "../plugins/cors.js";
import { schema } from "../schema/index.js";
import type { ContextFactory, ServerContext } from "./context.js";
import { graphiqlOptions, graphiqlRenderer, type GraphiQLSettings } from "./graphiql.js";

export type GatewayYoga = YogaServerInstance<ServerContext, Context>;

export interface GatewayYogaDeps {
  config: Config;
  plugins: Plugin<Context>[];
  context: ContextFactory;
  logger: Logger;
  graphiql?: GraphiQLSettings;
}

export function createGatewayYoga({ config, plugins, context, logger, graphiql }: GatewayYogaDeps): GatewayYoga {
  return createYoga<ServerContext, Context>({
    schema,
    graphiql: graphiqlOptions(config, schema, graphiql),
    renderGraphiQL: graphiqlRenderer(),
    landingPage: false,
    cors: corsOptions(config.cors),
    plugins,
    batching: false,
    // The error policy (src/plugins/errors.ts) masks everything Yoga's masking would, once.
    maskedErrors: false,
    // Multipart uploads are held to their own limit by the limits plugin before the body is read.
    maxRequestBodySize: Math.max(config.limits.maxRequestBodyBytes, config.limits.maxUploadRequestBytes),
    logging: yogaLogger(logger),
    context,
  });
}

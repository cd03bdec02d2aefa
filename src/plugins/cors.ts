// CORS: only the origins CORS_ORIGINS lists get CORS headers, never `*` with credentials, where Yoga's default
// would echo any origin with credentials (docs/frontend.md, "CORS").
import type { CORSOptions } from "graphql-yoga";
import type { Config } from "../config.js";
import { CSRF_HEADER } from "./index.js";

/** The headers a browser client sends: the bearer token, JSON or multipart bodies, CSRF, a request id. */
const ALLOWED_HEADERS = ["authorization", "content-type", CSRF_HEADER, "x-request-id"];

export function corsOptions(config: Config["cors"]): (request: Request) => CORSOptions {
  const anyOrigin = config.origins.includes("*");
  const allowed = new Set(config.origins);
  return (request) => {
    const origin = request.headers.get("origin");
    if (origin === null || (!anyOrigin && !allowed.has(origin))) return false;
    return {
      // The library echoes the caller's origin (with Vary: Origin) for `*` and for lists of two or more.
      origin: anyOrigin ? ["*"] : config.origins,
      credentials: config.credentials,
      methods: ["GET", "POST"],
      allowedHeaders: ALLOWED_HEADERS,
      exposedHeaders: ["retry-after", "x-request-id"],
      maxAge: 600,
    };
  };
}

// CORS: which other origins' pages may call the API from a browser. Yoga's default echoes any
// origin with credentials; here nothing is allowed cross-origin unless CORS_ORIGINS lists it, `*`
// never comes with credentials (config.ts refuses the pair), and a request from an origin not on
// the list gets no CORS headers at all, so the browser keeps the answer from the page.
// Auth is a bearer header, not a cookie, so credentials are rarely needed.
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

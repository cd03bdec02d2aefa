import type { Config } from "./config.js";
import type { GraphQLError } from "graphql";
import type { Live } from "./live/index.js";
import type { Loaders } from "./loaders/index.js";
import type { RateLimitCount } from "./plugins/rate-limit.js";
import type { Stores } from "./stores/index.js";

/** The authenticated caller: a LAYRA username and the bearer token it came with. */
export interface Viewer {
  username: string;
  token: string;
}

export interface Context {
  config: Config;
  stores: Stores;
  /** What open subscriptions share: the progress watcher and the token checks (src/live/index.ts). */
  live: Live;
  /** Null when no valid token came with the request; `authError` then says why. */
  viewer: Viewer | null;
  authError: GraphQLError | null;
  loaders: Loaders;
  requestId: string;
  /** What resolvers add to the response's `extensions`, e.g. the search certificate (src/plugins/result-extensions.ts). */
  resultExtensions?: Record<string, unknown>;
  /** This operation's rate-limit count, sent beside the token check (src/plugins/rate-limit.ts). */
  rateLimit?: RateLimitCount;
}

/** The context of a field behind the `loggedIn` scope: scope-auth has already refused anonymous callers. */
export type AuthenticatedContext = Context & { viewer: Viewer };

/** What store-level logic needs: the stores and the settings, not the request (CLIs run it too). */
export type StoreAccess = Pick<Context, "config" | "stores">;

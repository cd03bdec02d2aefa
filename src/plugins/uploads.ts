// Multipart uploads are checked before their body is read: Yoga's multipart parser holds every part in
// memory, so a caller without a valid token is refused on its headers, and the uploads being read or
// run at once are capped per user and per process (docs/security.md, "Uploads").
import { GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { Config } from "../config.js";
import { LimitExceeded, Unauthenticated } from "../errors.js";
import type { Metrics } from "../observability/metrics.js";
import { checkRegistered, verifyBearer } from "../resolvers/auth.js";
import type { Stores } from "../stores/index.js";

const isMultipart = (request: Request) => /^multipart\/form-data\b/i.test(request.headers.get("content-type") ?? "");

/** LIMIT_EXCEEDED with HTTP 429: the same upload succeeds once one already running has finished. */
function tooMany(limit: string, value: number, max: number): GraphQLError {
  const error = new LimitExceeded(limit, value, max);
  return new GraphQLError(`${error.message}; send it again once an upload running now has finished`, {
    extensions: { ...error.extensions, http: { status: 429 } },
  });
}

export function useUploadGate(config: Config, stores: Stores, metrics: Metrics): Plugin {
  const { maxConcurrentUploads, maxConcurrentUploadsPerUser } = config.upload;
  let running = 0;
  const runningByUser = new Map<string, number>();
  /** Each admitted upload's release, run when its response is ready (its files are no longer held). */
  const releases = new WeakMap<Request, () => void>();
  const refusal = (error: GraphQLError): GraphQLError => {
    metrics.rejections.inc({ reason: String(error.extensions.limit ?? "upload without a valid token") });
    return error;
  };
  return {
    async onRequestParse({ request }) {
      if (!isMultipart(request)) return;
      // Every multipart operation is an upload, and every upload needs a signed-in caller.
      const claims = await verifyBearer(config, request.headers.get("authorization") ?? undefined);
      const auth = await checkRegistered(stores, claims);
      if (!auth.viewer) throw refusal(auth.error ?? new Unauthenticated());
      const { username } = auth.viewer;
      const mine = runningByUser.get(username) ?? 0;
      if (mine >= maxConcurrentUploadsPerUser)
        throw refusal(tooMany("concurrent uploads of this user", mine + 1, maxConcurrentUploadsPerUser));
      if (running >= maxConcurrentUploads)
        throw refusal(tooMany("concurrent uploads", running + 1, maxConcurrentUploads));
      running++;
      runningByUser.set(username, mine + 1);
      let released = false;
      releases.set(request, () => {
        if (released) return;
        released = true;
        running--;
        const left = (runningByUser.get(username) ?? 1) - 1;
        if (left > 0) runningByUser.set(username, left);
        else runningByUser.delete(username);
      });
    },
    onResponse({ request }) {
      releases.get(request)?.();
    },
  };
}

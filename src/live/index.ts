// The live layer of one app: what open subscriptions share beyond the stores. buildApp creates it
// from the stores and closes it before them; resolvers reach it through the request context.
import type { Config } from "../config.js";
import type { Stores } from "../stores/index.js";
import { ProgressWatcher } from "./progress-watcher.js";
import { RevocationChecks } from "./revocation.js";

export interface Live {
  /** Live progress of LAYRA tasks and workflow runs, read from the `redis` task database. */
  progress: ProgressWatcher;
  /** Whether the tokens of open streams are still registered: one shared check per token per TOKEN_RECHECK_MS. */
  tokenChecks: RevocationChecks;
  /** Stops watching; the watcher quits its subscriber connection before the stores close the rest. */
  close(): Promise<void>;
}

export function createLive(config: Config, stores: Stores): Live {
  const progress = new ProgressWatcher(config, stores.redis.progressKeys);
  const tokenChecks = new RevocationChecks((jwt) => stores.redis.tokens.isRegistered(jwt), config.tokenRecheckMs);
  return {
    progress,
    tokenChecks,
    close: async () => {
      await progress.close();
      tokenChecks.close();
    },
  };
}

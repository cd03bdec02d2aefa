import type { Config } from "../config.js";
import type { StoreHealth } from "./health.js";
import { createKafkaStore, type KafkaStore } from "./kafka.js";
import { createMilvusStore, type MilvusStore } from "./milvus.js";
import { createModelStore, type ModelStore } from "./model.js";
import { createMongoStore, type MongoStore } from "./mongo.js";
import { ProgressWatcher } from "../live/progress-watcher.js";
import { createRedisStore, type RedisStore } from "./redis.js";
import { createS3Store, type S3Store } from "./s3.js";
import { RevocationChecks } from "../live/revocation.js";

export interface Stores {
  mongo: MongoStore;
  milvus: MilvusStore;
  redis: RedisStore;
  s3: S3Store;
  model: ModelStore;
  /** LAYRA's task queue; connected on first use. */
  kafka: KafkaStore;
  /** Live progress of LAYRA tasks and workflow runs, read from the `redis` task database. */
  progress: ProgressWatcher;
  /** Whether the tokens of open streams are still registered: one shared check per token per TOKEN_RECHECK_MS. */
  tokenChecks: RevocationChecks;
}

export function createStores(config: Config): Stores {
  const redis = createRedisStore(config);
  return {
    mongo: createMongoStore(config),
    milvus: createMilvusStore(config),
    redis,
    s3: createS3Store(config),
    model: createModelStore(config),
    kafka: createKafkaStore(config),
    progress: new ProgressWatcher(config, redis),
    tokenChecks: new RevocationChecks((jwt) => redis.tokens.isRegistered(jwt), config.tokenRecheckMs),
  };
}

export function storesHealth(stores: Stores): Promise<StoreHealth[]> {
  return Promise.all(
    [stores.mongo, stores.milvus, stores.redis, stores.s3, stores.model, stores.kafka].map((store) => store.health()),
  );
}

export async function closeStores(stores: Stores): Promise<void> {
  // The watcher first: it quits its subscriber connection before the Redis store closes the rest.
  await stores.progress.close();
  stores.tokenChecks.close();
  await Promise.allSettled(
    [stores.mongo, stores.milvus, stores.redis, stores.s3, stores.model, stores.kafka].map((store) => store.close()),
  );
}

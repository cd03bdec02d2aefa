import type { Config } from "../config.js";
import type { StoreHealth } from "./health.js";
import { createChatModelStore, type ChatModelStore } from "./chat-model.js";
import { createKafkaStore, type KafkaStore } from "./kafka.js";
import { createMilvusStore, type MilvusStore } from "./milvus.js";
import { createModelStore, type ModelStore } from "./model.js";
import { createMongoStore, type MongoStore } from "./mongo.js";
import { createPageCodeObjects, type PageCodeObjects } from "./page-code-objects.js";
import { createRedisStore, type RedisStore } from "./redis.js";
import { createS3Store, type S3Store } from "./s3.js";

export interface Stores {
  mongo: MongoStore;
  milvus: MilvusStore;
  redis: RedisStore;
  s3: S3Store;
  /** Each file's page codes in the bucket, for searches whose cache lacks a base (built on s3). */
  pageCodeObjects: PageCodeObjects;
  model: ModelStore;
  /** The chat models conversations name (no health: each conversation names its own). */
  chatModel: ChatModelStore;
  /** LAYRA's task queue; connected on first use. */
  kafka: KafkaStore;
}

export function createStores(config: Config): Stores {
  const s3 = createS3Store(config);
  return {
    mongo: createMongoStore(config),
    milvus: createMilvusStore(config),
    redis: createRedisStore(config),
    s3,
    pageCodeObjects: createPageCodeObjects(config, s3),
    model: createModelStore(config),
    chatModel: createChatModelStore(config),
    kafka: createKafkaStore(config),
  };
}

export function storesHealth(stores: Stores): Promise<StoreHealth[]> {
  return Promise.all(
    [stores.mongo, stores.milvus, stores.redis, stores.s3, stores.model, stores.kafka].map((store) => store.health()),
  );
}

export async function closeStores(stores: Stores): Promise<void> {
  await Promise.allSettled(
    [stores.mongo, stores.milvus, stores.redis, stores.s3, stores.model, stores.kafka].map((store) => store.close()),
  );
}

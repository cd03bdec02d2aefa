import { DataType, MilvusClient } from "@zilliz/milvus2-sdk-node";
import type { Config } from "../config.js";
import { UpstreamUnavailable } from "../errors.js";
import { probe, type StoreHealth } from "./health.js";
import { withTimeout } from "./timeout.js";

/** LAYRA names one collection per knowledge base: `colqwen` + the id with `-` replaced by `_`. */
export function collectionName(knowledgeBaseId: string): string {
  return `colqwen${knowledgeBaseId.replaceAll("-", "_")}`;
}

/** One row per token vector of a page, as LAYRA inserts them (contract §2.3; page_number is 0-based). */
export interface VectorRow {
  vector: number[];
  image_id: string;
  page_number: number;
  file_id: string;
}

export interface MilvusStore {
  client: MilvusClient;
  /** Creates a knowledge base's collection with LAYRA's schema and the configured HNSW index, loaded. */
  createCollection(knowledgeBaseId: string): Promise<void>;
  insertRows(knowledgeBaseId: string, rows: VectorRow[]): Promise<void>;
  /** Drops a knowledge base's collection; a missing one is already dropped (idempotent). */
  dropCollection(knowledgeBaseId: string): Promise<void>;
  /** Deletes the rows of these files (`file_id in [...]`, contract §2.4); a missing collection has none. */
  deleteFileRows(knowledgeBaseId: string, fileIds: string[]): Promise<void>;
  health(): Promise<StoreHealth>;
  close(): Promise<void>;
}

export function createMilvusStore(config: Config): MilvusStore {
  const address = config.milvus.address.replace(/^https?:\/\//, "");
  const client = new MilvusClient({
    address,
    ssl: config.milvus.address.startsWith("https://"),
    token: config.milvus.token,
    timeout: config.storeTimeoutMs,
  });
  // The SDK says hello to the server from its constructor; with Milvus down at start that promise
  // rejects unhandled and would take the process down. Data calls do not wait on it.
  client.connectPromise.catch(() => undefined);
  const check = (what: string, status: { error_code: string | number; reason: string }) => {
    if (status.error_code !== "Success") throw new UpstreamUnavailable("milvus", `${what}: ${status.reason}`);
  };
  return {
    client,
    createCollection: async (knowledgeBaseId) => {
      const collection_name = collectionName(knowledgeBaseId);
      if ((await client.hasCollection({ collection_name })).value) return;
      check("createCollection", await client.createCollection({
        collection_name,
        enable_dynamic_field: false,
        fields: [
          { name: "pk", data_type: DataType.Int64, is_primary_key: true, autoID: true },
          { name: "vector", data_type: DataType.FloatVector, dim: config.milvus.dim },
          { name: "image_id", data_type: DataType.VarChar, max_length: 65535 },
          { name: "page_number", data_type: DataType.Int64 },
          { name: "file_id", data_type: DataType.VarChar, max_length: 65535 },
        ],
      }));
      check("createIndex", await client.createIndex({
        collection_name,
        field_name: "vector",
        index_name: "vector_index",
        index_type: "HNSW",
        metric_type: config.milvus.metricType,
        params: { M: config.milvus.hnswM, efConstruction: config.milvus.efConstruction },
      }));
      check("loadCollection", await client.loadCollection({ collection_name }));
    },
    insertRows: async (knowledgeBaseId, rows) => {
      const result = await client.insert({ collection_name: collectionName(knowledgeBaseId), data: rows.map((row) => ({ ...row })) });
      check("insert", result.status);
    },
    dropCollection: async (knowledgeBaseId) => {
      const collection_name = collectionName(knowledgeBaseId);
      if (!(await client.hasCollection({ collection_name })).value) return;
      check("dropCollection", await client.dropCollection({ collection_name }));
    },
    deleteFileRows: async (knowledgeBaseId, fileIds) => {
      const collection_name = collectionName(knowledgeBaseId);
      if (fileIds.length === 0 || !(await client.hasCollection({ collection_name })).value) return;
      // JSON string literals are valid Milvus expression strings, quotes and backslashes escaped.
      const filter = `file_id in [${fileIds.map((id) => JSON.stringify(id)).join(", ")}]`;
      check("delete", (await client.delete({ collection_name, filter })).status);
    },
    health: () =>
      probe("milvus", async () => {
        const result = await withTimeout("milvus", config.storeTimeoutMs, client.listCollections());
        if (result.status.error_code !== "Success") throw new Error(result.status.reason);
      }),
    close: () => client.closeConnection().then(() => undefined),
  };
}

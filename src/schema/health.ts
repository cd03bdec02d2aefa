import { builder } from "./builder.js";
import { listSize } from "./lists.js";

/** The stores storesHealth probes (src/stores/index.ts). */
const STORE_COUNT = 6;
import { healthReport, type HealthReport } from "../resolvers/health.js";
import type { StoreHealth } from "../stores/health.js";

const StoreStatus = builder.objectRef<StoreHealth>("StoreStatus").implement({
  description: "One store's answer to its health probe.",
  fields: (t) => ({
    store: t.exposeString("store", { description: "mongo, milvus, redis, s3, model or kafka" }),
    up: t.exposeBoolean("up"),
    latencyMs: t.exposeFloat("latencyMs"),
  }),
});

const Health = builder.objectRef<HealthReport>("Health").implement({
  fields: (t) => ({
    ready: t.exposeBoolean("ready", { description: "True when every store answers." }),
    stores: t.field({ type: [StoreStatus], ...listSize(STORE_COUNT), resolve: (report) => report.stores }),
  }),
});

builder.queryField("health", (t) =>
  t.field({
    type: Health,
    description: "Each store's status and latency. Public: the only field that needs no token.",
    resolve: (_root, _args, context) => healthReport(context),
  }),
);

import type { Stores } from "../stores/index.js";

/** The per-request DataLoaders: created for every operation and every subscription event. */
export type Loaders = ReturnType<typeof createLoaders>;

export function createLoaders(_stores: Stores) {
  return {};
}

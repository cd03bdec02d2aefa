import { observeStoreCall } from "./observe.js";
import { errorMessage } from "../errors.js";

export interface StoreHealth {
  store: string;
  up: boolean;
  latencyMs: number;
  error?: string;
}

/** Runs a store's probe and reports how it went; a probe never throws. */
export async function probe(store: string, check: () => Promise<unknown>): Promise<StoreHealth> {
  const started = performance.now();
  try {
    await observeStoreCall(store, check, "health");
    return { store, up: true, latencyMs: performance.now() - started };
  } catch (error) {
    return {
      store,
      up: false,
      latencyMs: performance.now() - started,
      error: errorMessage(error),
    };
  }
}

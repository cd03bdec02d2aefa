// Every list field is bounded, and the cost model (cost.ts) knows the bound: a list that can grow
// with stored data takes `first`/`offset` (sliceArgs, src/lib/pagination.ts sliceList); a small one
// is returned up to a declared maximum (listSize, capList). test/limits.test.ts checks that no list
// field is left without one or the other.
import { DEFAULT_PAGE_SIZE } from "../lib/pagination.js";
import { builder } from "./builder.js";

export type ArgBuilder = Parameters<Parameters<typeof builder.queryFields>[0]>[0]["arg"];

export const sliceArgs = (arg: ArgBuilder) => ({
  first: arg.int({ defaultValue: DEFAULT_PAGE_SIZE, description: "How many items, 0..100 (default 20)." }),
  offset: arg.int({ defaultValue: 0, description: "How many items to skip." }),
});

/** The field option that declares a list's maximum length to the cost model: its sub-selection counts `max` times. */
export const listSize = (max: number) => ({ complexity: { multiplier: max } });

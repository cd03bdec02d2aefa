// What a field costs in @pothos/plugin-complexity's model, which the gateway's cost limit adds up
// before an operation runs (docs/security.md, "Every list and every response is bounded").
import type { FieldComplexityFunction } from "@pothos/plugin-complexity";
import { getNullableType, isListType } from "graphql";
import type { Context } from "../context.js";

const PAGE_ARGUMENTS = ["first", "last"];
const TOP_K_ARGUMENT = "topK";

/**
 * Every field costs 1 plus the items of its list arguments. Its sub-selection counts once per item it
 * may return: `first`/`last` (the larger; COST_DEFAULT_PAGE_SIZE when neither is given), else `topK`
 * (else COST_DEFAULT_TOP_K), else for a list field the length of its longest list argument, else
 * COST_DEFAULT_LIST_SIZE. A list whose maximum is known declares it instead (`listSize`, lists.ts).
 */
export const fieldCost: FieldComplexityFunction<Context, Record<string, unknown>> = (args, context, field) => {
  const { defaultPageSize, defaultTopK, defaultListSize } = context.config.limits;
  const listLengths = Object.values(args)
    .filter((value) => Array.isArray(value))
    .map((list) => list.length);
  const takes = (name: string) => field.args.some((argument) => argument.name === name);
  const countIn = (name: string) => {
    const value = args[name];
    return typeof value === "number" && Number.isFinite(value) ? Math.max(0, value) : undefined;
  };
  const items = listLengths.reduce((sum, length) => sum + length, 0);
  if (PAGE_ARGUMENTS.some(takes)) {
    const given = PAGE_ARGUMENTS.map(countIn).filter((count) => count !== undefined);
    return { field: 1 + items, multiplier: given.length > 0 ? Math.max(...given) : defaultPageSize };
  }
  if (takes(TOP_K_ARGUMENT)) return { field: 1 + items, multiplier: countIn(TOP_K_ARGUMENT) ?? defaultTopK };
  if (!isListType(getNullableType(field.type))) return { field: 1 + items, multiplier: 1 };
  return { field: 1 + items, multiplier: listLengths.length > 0 ? Math.max(...listLengths) : defaultListSize };
};

/** A connection's `edges` are as many as its field's `first`/`last`, which already multiplied them. */
export const connectionEdgesCost = { complexity: { multiplier: 1 } };

// Merges what resolvers put in `context.resultExtensions` into the response's `extensions` (the search
// certificate: docs/architecture.md, "Exact two-stage search"). Single results only: no resolver that
// reports runs in a subscription.
import type { Plugin } from "graphql-yoga";
import type { Context } from "../context.js";

export function useResultExtensions(): Plugin<Context> {
  return {
    onExecute: ({ args }) => ({
      onExecuteDone: ({ result, setResult }) => {
        const added = (args.contextValue as Context).resultExtensions;
        if (!added || Symbol.asyncIterator in result) return;
        setResult({ ...result, extensions: { ...result.extensions, ...added } });
      },
    }),
  };
}

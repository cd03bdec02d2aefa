// One execution per subscription event for every subscriber who asked the same thing. A progress
// update reaches every subscriber of its task as the same event object (src/domain/progress.ts), and
// Yoga's executor would run the selection over it once per subscriber: at 10,000 subscribers of 100
// tasks that is 100 identical executions per update, and their garbage. Here the result is computed
// once per event object, operation (document, operation name, variables) and user, and handed to all
// of them; masking, limits and logging still run per subscriber on it (they build new results, never
// change the shared one). A subscription's events must therefore depend only on the event, the
// operation, its variables and the user, which holds for taskProgress and workflowRun: their fields
// only expose the event, and their owner checks run when the stream starts.
import {
  createSourceEventStream,
  execute,
  getOperationAST,
  GraphQLError,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
} from "graphql";
import { isAsyncIterable, type Plugin } from "graphql-yoga";
import type { Context } from "../context.js";

type Shared = ExecutionResult | Promise<ExecutionResult>;

export function useSharedEventResults(): Plugin<Context> {
  const documentIds = new WeakMap<DocumentNode, number>();
  let documents = 0;
  // Entries go with their event: the watcher keeps only the latest state of a key.
  const byEvent = new WeakMap<object, Map<string, Shared>>();

  const operationKey = (args: ExecutionArgs): string => {
    let documentId = documentIds.get(args.document);
    if (documentId === undefined) documentIds.set(args.document, (documentId = documents++));
    const username = (args.contextValue as Context | undefined)?.viewer?.username ?? "";
    return JSON.stringify([documentId, args.operationName ?? null, username, args.variableValues ?? null]);
  };

  const subscribe = async (args: ExecutionArgs) => {
    const source = await createSourceEventStream(args);
    if (!isAsyncIterable(source)) return source;
    const key = operationKey(args);
    const operation = getOperationAST(args.document, args.operationName);
    return eventResults(
      source[Symbol.asyncIterator](),
      (event) => {
        if (typeof event !== "object" || event === null) return execute({ ...args, rootValue: event });
        let results = byEvent.get(event);
        if (!results) byEvent.set(event, (results = new Map()));
        let result = results.get(key);
        if (!result) results.set(key, (result = execute({ ...args, rootValue: event })));
        return result;
      },
      // As Yoga's executor does: an error of the stream itself becomes a GraphQL error of the operation.
      (error) => {
        const cause = error instanceof Error ? error : new Error(String(error));
        return new GraphQLError(cause.message, { originalError: cause, nodes: operation ? [operation] : undefined });
      },
    );
  };

  return {
    onSubscribe({ setSubscribeFn }) {
      setSubscribeFn(subscribe as never);
    },
  };
}

/**
 * The results of a stream of events; after an error or return() it is done, as Yoga's executor's is.
 * One `then` per event rather than an async function: each waiting subscriber holds this layer's
 * pending promises, rebuilt on every event.
 */
function eventResults(
  source: AsyncIterator<unknown>,
  resultOf: (event: unknown) => Shared,
  wrapError: (error: unknown) => Error,
): AsyncIterableIterator<ExecutionResult> {
  let done = false;
  const finish = async () => {
    done = true;
    await source.return?.();
  };
  const fail = (error: unknown): Promise<never> =>
    finish().then(
      () => Promise.reject(error),
      () => Promise.reject(error),
    );
  const DONE = { value: undefined, done: true } as const;
  const resultStep = (step: IteratorResult<unknown>) => {
    if (step.done) {
      done = true;
      return DONE;
    }
    const result = resultOf(step.value);
    return result instanceof Promise
      ? result.then(
          (value) => ({ value, done: false as const }),
          (error: unknown) => fail(error),
        )
      : { value: result, done: false as const };
  };
  return {
    next() {
      if (done) return Promise.resolve(DONE);
      return source.next().then(resultStep, (error: unknown) => fail(wrapError(error)));
    },
    async return() {
      await finish();
      return DONE;
    },
    async throw(error?: unknown) {
      await finish();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

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
import { EventChannel } from "../lib/event-channel.js";
import { runObserved, type Observation } from "../observability/scope.js";

type Shared = ExecutionResult | Promise<ExecutionResult>;

export function useSharedEventResults(observation: Observation): Plugin<Context> {
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
  // Events are pushed from a store's callback: the execution reports to this app's metrics.
  const executeOn = (args: ExecutionArgs, event: unknown) =>
    runObserved(observation, () => execute({ ...args, rootValue: event }));

  const subscribe = async (args: ExecutionArgs) => {
    const source = await createSourceEventStream(args);
    if (!isAsyncIterable(source)) return source;
    if (!(source instanceof EventChannel)) {
      void source[Symbol.asyncIterator]().return?.();
      throw new Error("a subscription field must return an EventChannel (src/lib/event-channel.ts)");
    }
    const key = operationKey(args);
    const operation = getOperationAST(args.document, args.operationName);
    return source.map(
      (event: unknown) => {
        if (typeof event !== "object" || event === null) return executeOn(args, event);
        let results = byEvent.get(event);
        if (!results) byEvent.set(event, (results = new Map()));
        let result = results.get(key);
        if (!result) results.set(key, (result = executeOn(args, event)));
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
 * For a plugin's `onSubscribeResult`: `replace` on a refused subscription's single result, and on
 * each event of a stream as a map of its channel (src/lib/event-channel.ts), where Envelop's
 * handleStreamOrSingleExecutionResult would add one more async-iterator layer per subscriber.
 * `replace` returns the result to send instead, or null to keep it; `onError`, if given, replaces a
 * failure of the stream.
 */
export function mapSubscriptionResults(
  payload: { result: unknown; setResult(result: ExecutionResult | EventChannel<ExecutionResult>): void },
  replace: (result: ExecutionResult) => ExecutionResult | null,
  onError?: (error: unknown) => unknown,
): void {
  const events = subscriptionStream(payload.result);
  if (events) {
    payload.setResult(events.map((event) => replace(event) ?? event, onError));
    return;
  }
  const replaced = replace(payload.result as ExecutionResult);
  if (replaced) payload.setResult(replaced);
}

/** A subscription's stream, or null for a single result (the subscription was refused). */
export function subscriptionStream(result: unknown): EventChannel<ExecutionResult> | null {
  if (result instanceof EventChannel) return result as EventChannel<ExecutionResult>;
  if (isAsyncIterable(result)) throw new Error("subscription streams are EventChannels (useSharedEventResults)");
  return null;
}

// One execution per subscription event object, operation and user, handed to every subscriber who
// asked the same thing (docs/performance.md, "Live progress"); masking, limits and logging run per
// subscriber and never change the shared result. So a subscription's events may depend only on the
// event, the operation, its variables and the user. A `distinctResults` field also drops repeats.
import {
  createSourceEventStream,
  execute,
  getOperationAST,
  GraphQLError,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type OperationDefinitionNode,
} from "graphql";
import { isAsyncIterable, type Plugin } from "graphql-yoga";
import type { Context } from "../context.js";
import { EventChannel, SKIP } from "./event-channel.js";
import { messageTail } from "./result-payload.js";
import { rootFieldNames } from "../lib/root-fields.js";
import { runObserved, type Observation } from "../observability/scope.js";

type Shared = ExecutionResult | Promise<ExecutionResult>;

/**
 * Whether the root field declares `extensions: { distinctResults: true }` (taskProgress): its
 * events are successive states of one thing, so a subscriber is sent a result only when it differs
 * from the last one it was sent, and a change to fields it did not select sends it nothing.
 */
function sendsChangesOnly(args: ExecutionArgs, operation: OperationDefinitionNode | null | undefined): boolean {
  // Validation allows a subscription exactly one root field.
  const name = operation && rootFieldNames(args.document, operation)[0];
  const field = name ? args.schema.getSubscriptionType()?.getFields()[name] : undefined;
  return field?.extensions.distinctResults === true;
}

/** One subscriber's filter for a `distinctResults` field: a result equal to the last one it was sent is skipped. */
class RepeatFilter {
  private lastSent: Buffer | null = null;

  pass(result: Shared): ExecutionResult | typeof SKIP | Promise<ExecutionResult | typeof SKIP> {
    if (result instanceof Promise) return result.then((settled) => this.pass(settled));
    // A result with errors always goes, and the next one after it too. Equal tails, equal payloads.
    const payload = result.errors ? null : messageTail(result);
    if (payload !== null && this.lastSent !== null && payload.equals(this.lastSent)) return SKIP;
    this.lastSent = payload;
    return result;
  }
}

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
  const executeOn = (args: ExecutionArgs, event: unknown) => {
    observation.metrics.subscriptionExecutions.inc();
    return runObserved(observation, () => execute({ ...args, rootValue: event }));
  };

  const subscribe = async (args: ExecutionArgs) => {
    const source = await createSourceEventStream(args);
    if (!isAsyncIterable(source)) return source;
    // A field's `subscribe` returns any AsyncIterable; the layers after this one are maps of its channel.
    const channel = EventChannel.from(source);
    const key = operationKey(args);
    const operation = getOperationAST(args.document, args.operationName);
    const changes = sendsChangesOnly(args, operation) ? new RepeatFilter() : null;
    return channel.map(
      (event: unknown) => {
        let result: Shared | undefined;
        if (typeof event !== "object" || event === null) result = executeOn(args, event);
        else {
          let results = byEvent.get(event);
          if (!results) byEvent.set(event, (results = new Map()));
          result = results.get(key);
          if (!result) results.set(key, (result = executeOn(args, event)));
        }
        return changes ? changes.pass(result) : result;
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
 * each event of a stream as a layer of its own channel (`EventChannel.replaceEach`), where Envelop's
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
    events.replaceEach((event) => replace(event) ?? event, onError);
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

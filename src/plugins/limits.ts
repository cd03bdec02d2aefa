// Request-safety limits over HTTP and graphql-ws alike (docs/security.md, "Request limits"):
// graphql-armor counts tokens, depth, aliases and directives; @pothos/plugin-complexity's model
// (src/schema/cost.ts) gives cost and field count; byte sizes and input lists are checked here.
import { Buffer } from "node:buffer";
import {
  GraphQLError,
  getOperationAST,
  validate,
  visit,
  type DocumentNode,
  type ExecutionResult,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ValidationContext,
} from "graphql";
import { handleStreamOrSingleExecutionResult, type Plugin } from "graphql-yoga";
import type { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import { createComplexityRule, type ComplexityResult } from "@pothos/plugin-complexity";
import type { Config } from "../config.js";
import { LimitExceeded } from "../errors.js";
import { jsonByteLength } from "../lib/json-size.js";
import { mapSubscriptionResults } from "../live/shared-events.js";

export type Limits = Config["limits"];
type ArmorConfig = NonNullable<Parameters<typeof EnvelopArmorPlugin>[0]>;

/** The length of the longest array in `value`, at any depth (walked iteratively: input may be deep). */
function longestList(value: unknown): number {
  let longest = 0;
  const stack = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    if (Array.isArray(item)) {
      longest = Math.max(longest, item.length);
      for (const element of item) if (typeof element === "object" && element !== null) stack.push(element);
    } else if (typeof item === "object" && item !== null) {
      for (const element of Object.values(item))
        if (typeof element === "object" && element !== null) stack.push(element);
    }
  }
  return longest;
}

/** The longest list written in the document or given in a variable the operation declares. */
function longestInputList(
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
): number {
  let longest = 0;
  for (const definition of operation.variableDefinitions ?? [])
    longest = Math.max(longest, longestList(variables[definition.variable.name.value]));
  visit(document, {
    ListValue(list) {
      longest = Math.max(longest, list.values.length);
    },
  });
  return longest;
}

/**
 * Cost (`complexity`) and selected fields (`breadth`) of the operation that will run, with its
 * variables; null when they do not coerce (execution reports that).
 */
/** What the limits check before an operation runs. */
interface OperationMeasure {
  longestInputList: number;
  fields: number;
  cost: number;
}

export function measureComplexity(
  schema: GraphQLSchema,
  document: DocumentNode,
  request: { operationName?: string | null; variables: Record<string, unknown>; context: object },
): ComplexityResult | null {
  const results: ComplexityResult[] = [];
  validate(schema, document, [
    createComplexityRule({
      context: request.context,
      variableValues: request.variables,
      operationName: request.operationName,
      onResult: (result) => results.push(result),
    }),
  ]);
  return results[0] ?? null;
}

// armor tells what it counted only in its message ("... exceeded, found 13.", with exposeLimits on).
const countIn = (error: GraphQLError) => Number(/found (\d+)/.exec(error.message)?.[1] ?? Number.NaN);

/**
 * graphql-armor's limits, each rejection a LimitExceeded. Depth and aliases follow fragments where
 * they are spread; a fragment adds no depth of its own, and an aliased `__typename` counts.
 */
export function armorLimits(limits: Limits, onReject: (limit: string) => void): ArmorConfig {
  const reported = (limit: string, max: number) => ({
    n: max,
    exposeLimits: true,
    propagateOnRejection: false,
    onReject: [
      (context: ValidationContext | null, error: GraphQLError) => {
        onReject(limit);
        context?.reportError(new LimitExceeded(limit, countIn(error), max));
      },
    ],
  });
  return {
    // The cost model is the schema's own (src/schema/cost.ts).
    costLimit: { enabled: false },
    maxDepth: { ...reported("depth", limits.maxDepth), flattenFragments: true },
    maxAliases: { ...reported("aliases", limits.maxAliases), allowList: [] },
    maxDirectives: reported("directives", limits.maxDirectives),
    maxTokens: {
      n: limits.maxTokens,
      // The parser stops at the first token past the limit, so the count it tells is max + 1.
      onReject: [
        () => {
          onReject("tokens");
          throw new LimitExceeded("tokens", limits.maxTokens + 1, limits.maxTokens);
        },
      ],
    },
  };
}

/** The same request with a body that errors (413) once more than `max` bytes have been read. */
function capBody(request: Request, max: number): Request {
  let read = 0;
  const body = request.body!.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        read += chunk.byteLength;
        if (read > max) {
          const error = new LimitExceeded("request body", read, max, " bytes");
          controller.error(
            new GraphQLError(error.message, { extensions: { ...error.extensions, http: { status: 413 } } }),
          );
        } else controller.enqueue(chunk);
      },
    }),
  );
  return new Request(request.url, {
    method: request.method,
    headers: request.headers,
    signal: request.signal,
    body,
    duplex: "half",
  } as RequestInit);
}

/**
 * Document size wraps the parser (a cached document was within it when first parsed); input lists,
 * field count and cost are checked when the operation executes or subscribes, because `first`/`topK`
 * may come from variables and validation results are cached.
 */
export function useLimits(limits: Limits, onReject: (limit: string) => void): Plugin {
  const reject = (error: LimitExceeded) => {
    onReject(error.limit);
    return error;
  };
  // An operation without variables measures the same on every request, and Yoga hands the same
  // document object for the same text: measured once (graphql's validate costs 20-40 µs a request).
  const measuredOnce = new WeakMap<DocumentNode, Map<string, OperationMeasure>>();
  const measureOperation = (args: {
    schema: GraphQLSchema;
    document: DocumentNode;
    operationName?: string | null;
    variableValues?: unknown;
    contextValue: unknown;
  }): OperationMeasure | null => {
    const operation = getOperationAST(args.document, args.operationName);
    if (!operation) return null;
    const variables =
      args.variableValues && typeof args.variableValues === "object"
        ? (args.variableValues as Record<string, unknown>)
        : {};
    const reusable = (operation.variableDefinitions ?? []).length === 0;
    const key = args.operationName ?? "";
    const known = reusable ? measuredOnce.get(args.document)?.get(key) : undefined;
    if (known !== undefined) return known;
    const complexity = measureComplexity(args.schema, args.document, {
      operationName: args.operationName,
      variables,
      context: args.contextValue as object,
    });
    const measure = {
      longestInputList: longestInputList(args.document, operation, variables),
      fields: complexity?.breadth ?? 0,
      cost: complexity?.complexity ?? 0,
    };
    if (reusable) {
      const byName = measuredOnce.get(args.document) ?? new Map<string, OperationMeasure>();
      measuredOnce.set(args.document, byName.set(key, measure));
    }
    return measure;
  };
  const checkOperation = (args: Parameters<typeof measureOperation>[0]): LimitExceeded | null => {
    const measure = measureOperation(args);
    if (!measure) return null;
    if (measure.longestInputList > limits.maxInputListLength)
      return new LimitExceeded("input list", measure.longestInputList, limits.maxInputListLength, " items");
    if (measure.fields > limits.maxFields) return new LimitExceeded("fields", measure.fields, limits.maxFields);
    return measure.cost > limits.maxCost ? new LimitExceeded("cost", measure.cost, limits.maxCost) : null;
  };
  // The ceiling on what one result (an HTTP response, a graphql-ws message, one subscription event)
  // may weigh: past it the whole result is replaced by the error, never sent in part.
  // A subscription event's result is one object shared by every subscriber who asked the same thing
  // (src/live/shared-events.ts): measured once.
  const measured = new WeakMap<ExecutionResult, number>();
  /** The error result to send instead of one over MAX_RESPONSE_BYTES, or null. */
  const oversized = (result: ExecutionResult): ExecutionResult | null => {
    let bytes = measured.get(result);
    if (bytes === undefined) measured.set(result, (bytes = jsonByteLength(result, limits.maxResponseBytes)));
    return bytes > limits.maxResponseBytes
      ? { errors: [reject(new LimitExceeded("response size", bytes, limits.maxResponseBytes, " bytes"))] }
      : null;
  };
  const capResponse = ({ result, setResult }: { result: ExecutionResult; setResult: (r: ExecutionResult) => void }) => {
    const replaced = oversized(result);
    if (replaced) setResult(replaced);
  };
  return {
    onRequestParse({ request, requestParser, setRequestParser }) {
      // Yoga's own maxRequestBodySize also cuts off chunked bodies; this says by how much.
      const length = Number(request.headers.get("content-length") ?? Number.NaN);
      const multipart = /^multipart\/form-data\b/i.test(request.headers.get("content-type") ?? "");
      if (multipart) {
        // File uploads have their own, larger limit, checked before a byte of the body is read; a
        // multipart body must say its length so the check cannot be dodged by chunking.
        const max = limits.maxUploadRequestBytes;
        if (!Number.isInteger(length) || length > max) {
          const error = reject(
            new LimitExceeded("upload request body", Number.isInteger(length) ? length : -1, max, " bytes"),
          );
          throw new GraphQLError(
            `${Number.isInteger(length) ? error.message : "a multipart upload must send Content-Length"}; ` +
              "upload large files with the createUploadUrls and commitUploads mutations (presigned PUT URLs) instead",
            { extensions: { ...error.extensions, presignedPath: "createUploadUrls", http: { status: 413 } } },
          );
        }
        return;
      }
      if (Number.isInteger(length) && length > limits.maxRequestBodyBytes) {
        const error = reject(new LimitExceeded("request body", length, limits.maxRequestBodyBytes, " bytes"));
        throw new GraphQLError(error.message, { extensions: { ...error.extensions, http: { status: 413 } } });
      }
      // Yoga's own cut-off is the (larger) upload limit: hold a chunked non-upload body to the smaller one.
      if (!Number.isInteger(length) && requestParser && request.body) {
        setRequestParser((req) => requestParser(capBody(req, limits.maxRequestBodyBytes)));
      }
    },
    onParse({ parseFn, setParseFn }) {
      setParseFn((source, options) => {
        const bytes = Buffer.byteLength(typeof source === "string" ? source : source.body, "utf8");
        if (bytes > limits.maxDocumentBytes)
          throw reject(new LimitExceeded("document size", bytes, limits.maxDocumentBytes, " bytes"));
        return parseFn(source, options);
      });
    },
    onExecute({ args, setResultAndStopExecution }) {
      const error = checkOperation(args);
      if (error) {
        setResultAndStopExecution({ errors: [reject(error)] });
        return;
      }
      return { onExecuteDone: (payload) => handleStreamOrSingleExecutionResult(payload, capResponse) };
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const error = checkOperation(args);
      if (error) {
        setResultAndStopExecution({ errors: [reject(error)] });
        return;
      }
      return { onSubscribeResult: (payload) => mapSubscriptionResults(payload, oversized) };
    },
  };
}

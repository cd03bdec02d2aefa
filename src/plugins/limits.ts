// Request-safety limits, as Envelop hooks so that they apply to HTTP and graphql-ws alike
// (app.ts runs graphql-ws operations through yoga.getEnveloped):
//   - document size and token count are checked before parsing (onParse);
//   - depth and aliases are a validation rule over every operation in the document;
//   - cost is checked when the operation executes or subscribes (it depends on variables);
//   - the request body size is checked on the HTTP request before Yoga reads it (and Yoga's
//     maxRequestBodySize cuts off chunked bodies); graphql-ws frames are capped by maxPayload.
// Every rejection is a LimitExceeded error: "depth 13 exceeds the limit of 12", with
// extensions { code: "LIMIT_EXCEEDED", limit, value, max }.
//
// The cost model, in one sentence: every selected field costs 1 plus the items of its list
// arguments, and a field that returns many items multiplies the cost of its sub-selection by how
// many it may return. How many is
//   - the value of its `first` or `last` argument (else the argument's default, else
//     COST_DEFAULT_PAGE_SIZE = 20), or of its `topK` argument (else its default, else
//     COST_DEFAULT_TOP_K = 10);
//   - for a list field with a list argument (`nodes(ids:)`), the length of that list;
//   - for a list field that declares its maximum (`listSize`, src/schema/lists.ts), that maximum;
//   - for any other list-typed field, COST_DEFAULT_LIST_SIZE (20), except a list directly under a
//     field already multiplied by first/last/topK (a connection's `edges`/`nodes`), which the
//     argument already bounds.
// So `{ files(first: 50) { edges { node { id name } } } }` costs 1 + 50 * (1 + (1 + 2)) = 201, and
// `{ nodes(ids: [a, b, c]) { id } }` costs 1 + 3 + 3 * 1 = 7. No list in an argument (at any depth,
// variables included) may be longer than MAX_INPUT_LIST_LENGTH.
// Arguments given as variables are read from the request's variables. Introspection fields
// (__schema, __type) are left out of depth and cost: introspection is off in production.
import { Buffer } from "node:buffer";
import {
  GraphQLError,
  Kind,
  Lexer,
  Source,
  TokenKind,
  getNamedType,
  getOperationAST,
  getNullableType,
  isInterfaceType,
  isCompositeType,
  isListType,
  isObjectType,
  valueFromAST,
  type ASTVisitor,
  type DocumentNode,
  type ExecutionResult,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
} from "graphql";
import { handleStreamOrSingleExecutionResult, type Plugin } from "graphql-yoga";
import type { Config } from "../config.js";
import { LimitExceeded } from "../errors.js";
import { jsonByteLength } from "../lib/json-size.js";
import { mapSubscriptionResults } from "../live/shared-events.js";

export type Limits = Config["limits"];

export interface Measure {
  depth: number;
  aliases: number;
  cost: number;
  /** The longest list found in any argument value, at any depth. */
  longestInputList: number;
}

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

const PAGE_ARGUMENTS = ["first", "last"];
const TOP_K_ARGUMENT = "topK";
const INTROSPECTION_FIELDS = new Set(["__schema", "__type"]);

/** Depth, alias count and cost of one operation (fragments included, each spread counted where it is used). */
export function measureOperation(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
  limits: Pick<Limits, "defaultPageSize" | "defaultTopK" | "defaultListSize">,
): Measure {
  let longestInputList = 0;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  // A fragment's measure depends only on whether its list fields are already bounded: memoised,
  // so fragment "bombs" (each spreading the next several times) stay linear.
  const memo = new Map<string, Measure>();
  const inProgress = new Set<string>();

  /** first/last (the larger if both) or topK, given or defaulted; null for a field without them. */
  const multiplierOf = (field: FieldNode, definition: GraphQLField<unknown, unknown>): number | null => {
    const valueOf = (name: string): number | undefined => {
      const argumentDefinition = definition.args.find((argument) => argument.name === name);
      if (!argumentDefinition) return undefined;
      const node = field.arguments?.find((argument) => argument.name.value === name);
      let value: unknown = node ? valueFromAST(node.value, argumentDefinition.type, variables) : undefined;
      if (value === undefined || value === null) value = argumentDefinition.defaultValue;
      return typeof value === "number" && Number.isFinite(value) ? Math.max(0, value) : undefined;
    };
    const has = (name: string) => definition.args.some((argument) => argument.name === name);
    if (PAGE_ARGUMENTS.some(has)) {
      const given = PAGE_ARGUMENTS.map(valueOf).filter((value): value is number => value !== undefined);
      return given.length > 0 ? Math.max(...given) : limits.defaultPageSize;
    }
    if (has(TOP_K_ARGUMENT)) return valueOf(TOP_K_ARGUMENT) ?? limits.defaultTopK;
    return null;
  };

  /** The items of the field's list arguments (each counts as work), and the longest of those lists. */
  const listArgumentsOf = (field: FieldNode, definition: GraphQLField<unknown, unknown>) => {
    let items = 0;
    let longest: number | null = null;
    for (const node of field.arguments ?? []) {
      const argumentDefinition = definition.args.find((argument) => argument.name === node.name.value);
      if (!argumentDefinition) continue;
      const value = valueFromAST(node.value, argumentDefinition.type, variables);
      longestInputList = Math.max(longestInputList, longestList(value));
      if (Array.isArray(value)) {
        items += value.length;
        longest = Math.max(longest ?? 0, value.length);
      }
    }
    return { items, longest };
  };

  const measureSelections = (
    selectionSet: SelectionSetNode | undefined,
    parentType: GraphQLCompositeType | null,
    bounded: boolean,
  ): Measure => {
    const total: Measure = { depth: 0, aliases: 0, cost: 0, longestInputList: 0 };
    if (!selectionSet) return total;
    const add = (part: Measure) => {
      total.depth = Math.max(total.depth, part.depth);
      total.aliases += part.aliases;
      total.cost += part.cost;
    };
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        const aliases = selection.alias ? 1 : 0;
        const name = selection.name.value;
        if (INTROSPECTION_FIELDS.has(name)) {
          total.aliases += aliases;
          continue;
        }
        const definition = parentType ? fieldOf(parentType, name) : undefined;
        if (!definition) {
          // __typename, or a field the schema does not have (validation reports that one).
          add({ depth: 1, aliases, cost: 1, longestInputList: 0 });
          continue;
        }
        const named = getNamedType(definition.type);
        const childType = isCompositeType(named) ? named : null;
        const listArguments = listArgumentsOf(selection, definition);
        const declared = definition.extensions?.listSize;
        const isList = isListType(getNullableType(definition.type));
        const argumentMultiplier =
          multiplierOf(selection, definition) ?? (isList ? listArguments.longest : null) ?? null;
        const multiplier =
          argumentMultiplier ??
          (isList && typeof declared === "number" ? declared : isList && !bounded ? limits.defaultListSize : 1);
        const child = measureSelections(selection.selectionSet, childType, argumentMultiplier !== null);
        add({
          depth: 1 + child.depth,
          aliases: aliases + child.aliases,
          cost: 1 + listArguments.items + multiplier * child.cost,
          longestInputList: 0,
        });
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const condition = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parentType;
        add(
          measureSelections(
            selection.selectionSet,
            condition && isCompositeType(condition) ? condition : parentType,
            bounded,
          ),
        );
      } else {
        const name = selection.name.value;
        const key = `${name}:${bounded}`;
        const known = memo.get(key);
        if (known) {
          add(known);
          continue;
        }
        const fragment = fragments.get(name);
        if (!fragment || inProgress.has(name)) continue; // unknown or cyclic: validation reports it
        inProgress.add(name);
        const condition = schema.getType(fragment.typeCondition.name.value);
        const measured = measureSelections(
          fragment.selectionSet,
          condition && isCompositeType(condition) ? condition : null,
          bounded,
        );
        inProgress.delete(name);
        memo.set(key, measured);
        add(measured);
      }
    }
    return total;
  };

  const root = schema.getRootType(operation.operation) ?? null;
  const measure = measureSelections(operation.selectionSet, root, false);
  return { ...measure, longestInputList };
}

function fieldOf(type: GraphQLCompositeType, name: string): GraphQLField<unknown, unknown> | undefined {
  return isObjectType(type) || isInterfaceType(type) ? type.getFields()[name] : undefined;
}

/** The validation rule: depth and aliases of every operation in the document (they do not depend on variables). */
export function limitsRule(limits: Limits, onReject: (limit: string) => void = () => undefined) {
  return (context: ValidationContext): ASTVisitor => ({
    OperationDefinition(operation) {
      const measure = measureOperation(context.getSchema(), context.getDocument(), operation, {}, limits);
      if (measure.depth > limits.maxDepth) {
        onReject("depth");
        context.reportError(new LimitExceeded("depth", measure.depth, limits.maxDepth));
      }
      if (measure.aliases > limits.maxAliases) {
        onReject("aliases");
        context.reportError(new LimitExceeded("aliases", measure.aliases, limits.maxAliases));
      }
      return false;
    },
  });
}

/** Size and token count of a document, before it is parsed. */
export function checkDocument(source: string, limits: Limits): void {
  const bytes = Buffer.byteLength(source, "utf8");
  if (bytes > limits.maxDocumentBytes)
    throw new LimitExceeded("document size", bytes, limits.maxDocumentBytes, " bytes");
  const lexer = new Lexer(new Source(source));
  let tokens = 0;
  try {
    while (lexer.advance().kind !== TokenKind.EOF) tokens++;
  } catch {
    return; // a syntax error: the parser reports it
  }
  if (tokens > limits.maxTokens) throw new LimitExceeded("tokens", tokens, limits.maxTokens);
}

/** The cost of the operation that will run, with the request's variables. */
export function checkCost(
  args: { schema: GraphQLSchema; document: DocumentNode; operationName?: string | null; variableValues?: unknown },
  limits: Limits,
): LimitExceeded | null {
  const operation = getOperationAST(args.document, args.operationName);
  if (!operation) return null;
  const variables =
    args.variableValues && typeof args.variableValues === "object"
      ? (args.variableValues as Record<string, unknown>)
      : {};
  const { cost, longestInputList } = measureOperation(args.schema, args.document, operation, variables, limits);
  if (longestInputList > limits.maxInputListLength)
    return new LimitExceeded("input list", longestInputList, limits.maxInputListLength, " items");
  return cost > limits.maxCost ? new LimitExceeded("cost", cost, limits.maxCost) : null;
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
 * Document size and tokens wrap the parser (a cached document was within them when first parsed);
 * depth and aliases are a validation rule; cost is checked when the operation executes or
 * subscribes, because `first`/`topK` may come from variables and validation results are cached.
 */
export function useLimits(limits: Limits, onReject: (limit: string) => void): Plugin {
  const reject = (error: LimitExceeded) => {
    onReject(error.limit);
    return error;
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
        try {
          checkDocument(typeof source === "string" ? source : source.body, limits);
        } catch (error) {
          if (error instanceof LimitExceeded) reject(error);
          throw error;
        }
        return parseFn(source, options);
      });
    },
    onValidate({ addValidationRule }) {
      addValidationRule(limitsRule(limits, (limit) => onReject(limit)));
    },
    onExecute({ args, setResultAndStopExecution }) {
      const error = checkCost(args, limits);
      if (error) {
        setResultAndStopExecution({ errors: [reject(error)] });
        return;
      }
      return { onExecuteDone: (payload) => handleStreamOrSingleExecutionResult(payload, capResponse) };
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const error = checkCost(args, limits);
      if (error) {
        setResultAndStopExecution({ errors: [reject(error)] });
        return;
      }
      return { onSubscribeResult: (payload) => mapSubscriptionResults(payload, oversized) };
    },
  };
}

// Persisted operations (PERSISTED_OPERATIONS_FILE): only the manifest's operations run, named by hash over HTTP,
// multipart and graphql-ws alike (docs/frontend.md, "Persisted documents").
import { readFileSync } from "node:fs";
import { GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";
import { usePersistedOperations } from "@graphql-yoga/plugin-persisted-operations";
import { errorMessage } from "../errors.js";

export class PersistedOperations {
  readonly byHash: ReadonlyMap<string, string>;
  private readonly texts: ReadonlySet<string>;

  constructor(manifest: Record<string, string>) {
    this.byHash = new Map(Object.entries(manifest));
    this.texts = new Set(this.byHash.values());
  }

  static load(file: string): PersistedOperations {
    let manifest: unknown;
    try {
      manifest = JSON.parse(readFileSync(file, "utf8"));
    } catch (error) {
      throw new Error(`PERSISTED_OPERATIONS_FILE ${file}: ${errorMessage(error)}`, {
        cause: error,
      });
    }
    if (
      !manifest ||
      typeof manifest !== "object" ||
      Array.isArray(manifest) ||
      !Object.values(manifest).every((query) => typeof query === "string")
    ) {
      throw new Error(`PERSISTED_OPERATIONS_FILE ${file}: must be a JSON object {hash: query}`);
    }
    return new PersistedOperations(manifest as Record<string, string>);
  }

  isListed(query: string): boolean {
    return this.texts.has(query);
  }

  /** The query for a graphql-ws subscribe message: the listed text for its hash, or its own text if listed. */
  resolve(params: PersistedParams): string {
    const id = persistedId(params);
    if (id !== null) {
      if (params.query) throw idAndBody();
      const query = this.byHash.get(id);
      if (query === undefined) throw notFound();
      return query;
    }
    if (params.query && this.isListed(params.query)) return params.query;
    throw persistedOnly();
  }
}

interface PersistedParams {
  query?: string | null;
  documentId?: unknown;
  extensions?: Record<string, unknown> | null;
}

function persistedId(params: PersistedParams): string | null {
  if (typeof params.documentId === "string") return params.documentId;
  const persisted = params.extensions?.persistedQuery as { sha256Hash?: unknown } | undefined;
  if (typeof persisted?.sha256Hash === "string") return persisted.sha256Hash;
  return null;
}

const notFound = () =>
  new GraphQLError("PersistedQueryNotFound", {
    extensions: { code: "PERSISTED_QUERY_NOT_FOUND", http: { status: 404 } },
  });
/** docs/errors.md's code for a hash sent with a query text (the library would answer PERSISTED_QUERY_ONLY). */
const idAndBody = () =>
  new GraphQLError("send either a persisted operation's hash or a query text, not both", {
    extensions: { code: "CANNOT_SEND_PQ_ID_AND_BODY", http: { status: 400 } },
  });
const persistedOnly = () =>
  new GraphQLError("only persisted operations are allowed", {
    extensions: { code: "PERSISTED_QUERY_ONLY", http: { status: 400 } },
  });

export function usePersisted(operations: PersistedOperations): Plugin[] {
  return [
    {
      // Before the library's own check, which answers PERSISTED_QUERY_ONLY for any query text.
      onParams({ params }) {
        if (params.query && persistedId(params) !== null) throw idAndBody();
      },
    },
    usePersistedOperations({
      getPersistedOperation: (key) => operations.byHash.get(key) ?? null,
      allowArbitraryOperations: false,
      extractPersistedOperationId: (params) => persistedId(params),
      customErrors: {
        notFound: {
          message: "PersistedQueryNotFound",
          extensions: { code: "PERSISTED_QUERY_NOT_FOUND", http: { status: 404 } },
        },
        persistedQueryOnly: {
          message: "only persisted operations are allowed",
          extensions: { code: "PERSISTED_QUERY_ONLY", http: { status: 400 } },
        },
        keyNotFound: {
          message: "only persisted operations are allowed",
          extensions: { code: "PERSISTED_QUERY_ONLY", http: { status: 400 } },
        },
      },
    }),
    {
      // The same rule for every transport: a document that is not in the manifest is not parsed.
      onParse({ parseFn, setParseFn }) {
        setParseFn((source, options) => {
          if (!operations.isListed(typeof source === "string" ? source : source.body)) throw persistedOnly();
          return parseFn(source, options);
        });
      },
    },
  ];
}

// The app's only way to talk to the gateway: typed documents from src/gql/ in, typed results out.
// Queries and mutations go over HTTP, uploads as a GraphQL multipart request, subscriptions over
// graphql-ws. Built with VITE_PERSISTED_DOCUMENTS=true, the app sends each document's hash
// (`documentId`) instead of its text, for a gateway that runs only persisted operations.
import { createClient, type Client, type SubscribePayload } from "graphql-ws";
import type { TypedDocumentString } from "./gql/graphql";

const persisted = import.meta.env.VITE_PERSISTED_DOCUMENTS === "true";

export interface Session {
  /** The GraphQL endpoint, absolute or relative to the page (`/graphql` with `npm run dev`). */
  endpoint: string;
  token: string;
}

/** A GraphQL error, or a refused request, with the gateway's `extensions.code` (docs/errors.md). */
export class GatewayError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(code ? `${code}: ${message}` : message);
  }
}

interface Result<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** The request body's operation part: the document's hash in persisted mode, else its text. */
function operation<V>(document: TypedDocumentString<unknown, V>, variables: V) {
  if (!persisted) return { query: document.toString(), variables };
  const hash = document.__meta__?.hash as string | undefined;
  if (!hash) throw new Error("built for persisted documents, but the document has no hash: run npm run codegen");
  return { documentId: hash, variables };
}

async function settle<T>(response: Response): Promise<T> {
  const body = (await response.json().catch(() => null)) as Result<T> | null;
  const error = body?.errors?.[0];
  if (error) throw new GatewayError(error.message, error.extensions?.code);
  if (!response.ok || !body?.data) throw new GatewayError(`HTTP ${response.status}`, undefined);
  return body.data;
}

export class Gateway {
  private ws: Client | null = null;

  constructor(readonly session: Session) {}

  async execute<T, V>(document: TypedDocumentString<T, V>, variables: V): Promise<T> {
    const response = await fetch(this.session.endpoint, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${this.session.token}` },
      body: JSON.stringify(operation(document, variables)),
    });
    return settle<T>(response);
  }

  /**
   * A mutation whose `$files: [Upload!]!` variable gets `files`, as the GraphQL multipart request spec
   * has it: `operations` with null where each file goes, `map` from form field to variable path, then
   * the files. Multipart is a "simple" browser request, so the gateway wants x-graphql-csrf.
   */
  async upload<T, V extends Record<string, unknown>>(
    document: TypedDocumentString<T, V>,
    variables: Omit<V, "files">,
    files: File[],
  ): Promise<T> {
    const form = new FormData();
    const withSlots = { ...variables, files: files.map(() => null) } as unknown as V;
    form.append("operations", JSON.stringify(operation(document, withSlots)));
    form.append("map", JSON.stringify(Object.fromEntries(files.map((_, i) => [String(i), [`variables.files.${i}`]]))));
    files.forEach((file, i) => form.append(String(i), file, file.name));
    const response = await fetch(this.session.endpoint, {
      method: "POST",
      headers: { authorization: `Bearer ${this.session.token}`, "x-graphql-csrf": "1" },
      body: form,
    });
    return settle<T>(response);
  }

  /** Every result of a subscription until it completes; one WebSocket is shared by all of them. */
  async *subscribe<T, V>(document: TypedDocumentString<T, V>, variables: V): AsyncGenerator<T> {
    this.ws ??= createClient({
      url: new URL(this.session.endpoint, location.href).href.replace(/^http/, "ws"),
      connectionParams: { Authorization: `Bearer ${this.session.token}` },
    });
    // graphql-ws wants a `query` string; in persisted mode it is empty and `documentId` names it.
    const payload = { query: "", ...operation(document, variables) } as SubscribePayload;
    for await (const result of this.ws.iterate<T>(payload)) {
      const error = result.errors?.[0];
      if (error) throw new GatewayError(error.message, (error.extensions as { code?: string } | undefined)?.code);
      if (result.data) yield result.data;
    }
  }

  close(): void {
    void this.ws?.dispose();
    this.ws = null;
  }
}

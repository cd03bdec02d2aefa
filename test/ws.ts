// A graphql-ws client for tests: one operation over a real WebSocket, all of its results, and how it ended.
import { createClient, type Client, type SubscribePayload } from "graphql-ws";
import WebSocket from "ws";

export interface WsOutcome {
  results: { data?: unknown; errors?: { message: string; extensions?: Record<string, unknown> }[] }[];
  /** The `error` message's errors (refused before execution), if any. */
  errors?: { message: string; extensions?: Record<string, unknown> }[];
  /** The close event, when the server closed the socket instead. */
  closed?: { code: number; reason: string };
}

export function wsClient(baseUrl: string, connectionParams?: Record<string, unknown>): Client {
  return createClient({
    url: `${baseUrl.replace(/^http/, "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams,
    retryAttempts: 0,
    lazy: true,
  });
}

export async function wsOperation(
  baseUrl: string,
  payload: SubscribePayload,
  connectionParams?: Record<string, unknown>,
): Promise<WsOutcome> {
  const client = wsClient(baseUrl, connectionParams);
  try {
    return await new Promise<WsOutcome>((resolve) => {
      const results: WsOutcome["results"] = [];
      client.subscribe(payload, {
        next: (result) => void results.push(result as WsOutcome["results"][number]),
        error: (error) => {
          if (Array.isArray(error)) resolve({ results, errors: error });
          else {
            const event = error as { code?: number; reason?: string };
            resolve({ results, closed: { code: event.code ?? 0, reason: event.reason ?? String(error) } });
          }
        },
        complete: () => resolve({ results }),
      });
    });
  } finally {
    await client.dispose();
  }
}

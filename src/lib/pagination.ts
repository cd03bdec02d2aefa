// Relay connections over offset windows, with argument checks that answer BAD_USER_INPUT instead
// of silently clamping: `first`/`last` in 0..100 (default 20) and cursors this API issued.
import { resolveOffsetConnection, type DefaultConnectionArguments } from "@pothos/plugin-relay";
import { BadUserInput } from "../errors.js";

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;
const CURSOR_PREFIX = "OffsetConnection:";

function checkCursor(name: "after" | "before", cursor: string | null | undefined): void {
  if (cursor === null || cursor === undefined) return;
  const decoded = /^[A-Za-z0-9+/=]+$/.test(cursor) ? Buffer.from(cursor, "base64").toString("utf8") : "";
  const offset = decoded.startsWith(CURSOR_PREFIX) ? Number(decoded.slice(CURSOR_PREFIX.length)) : Number.NaN;
  if (!Number.isInteger(offset) || offset < 0)
    throw new BadUserInput(name, `${JSON.stringify(cursor)} is not a cursor of this connection`);
}

export function checkConnectionArgs(args: DefaultConnectionArguments): void {
  for (const name of ["first", "last"] as const) {
    const value = args[name];
    if (value !== null && value !== undefined && (value < 0 || value > MAX_PAGE_SIZE)) {
      throw new BadUserInput(name, `must be between 0 and ${MAX_PAGE_SIZE}, got ${value}`);
    }
  }
  checkCursor("after", args.after);
  checkCursor("before", args.before);
}

/** A connection over an in-memory list (embedded arrays such as a KB's files or a conversation's turns). */
export async function arrayConnection<T, N>(
  args: DefaultConnectionArguments,
  items: readonly T[],
  toNodes: (window: T[]) => Promise<N[]> | N[],
) {
  checkConnectionArgs(args);
  const connection = await resolveOffsetConnection(
    { args, defaultSize: DEFAULT_PAGE_SIZE, maxSize: MAX_PAGE_SIZE, totalCount: items.length },
    ({ offset, limit }) => toNodes(items.slice(offset, offset + limit)),
  );
  return { ...connection, totalCount: items.length };
}

/** A connection over a store query that takes (offset, limit), with its total count. */
export async function queryConnection<N>(
  args: DefaultConnectionArguments,
  totalCount: number,
  page: (offset: number, limit: number) => Promise<N[]>,
) {
  checkConnectionArgs(args);
  const connection = await resolveOffsetConnection(
    { args, defaultSize: DEFAULT_PAGE_SIZE, maxSize: MAX_PAGE_SIZE, totalCount },
    ({ offset, limit }) => page(offset, limit),
  );
  return { ...connection, totalCount };
}

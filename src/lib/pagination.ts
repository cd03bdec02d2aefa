// Relay connections over offset windows, with argument checks that answer BAD_USER_INPUT instead
// of silently clamping: `first`/`last` in 0..100 (default 20) and cursors this API issued.
import { resolveOffsetConnection, type DefaultConnectionArguments } from "@pothos/plugin-relay";
import { BadUserInput } from "../errors.js";

export const DEFAULT_PAGE_SIZE = 20;
const MAX_PAGE_SIZE = 100;
const CURSOR_PREFIX = "OffsetConnection:";

function checkCursor(name: "after" | "before", cursor: string | null | undefined): void {
  if (cursor === null || cursor === undefined) return;
  // Exactly what this API issues: the prefix and a plain decimal offset (no exponent, hex, sign,
  // space or leading zero), at most MAX_OFFSET, in canonical base64.
  const decoded = /^[A-Za-z0-9+/]{1,64}={0,2}$/.test(cursor) ? Buffer.from(cursor, "base64").toString("utf8") : "";
  const digits = decoded.startsWith(CURSOR_PREFIX) ? decoded.slice(CURSOR_PREFIX.length) : "";
  const canonical = Buffer.from(decoded, "utf8").toString("base64") === cursor;
  if (!canonical || !/^(0|[1-9][0-9]{0,6})$/.test(digits) || Number(digits) > MAX_OFFSET)
    throw new BadUserInput(name, `${JSON.stringify(cursor)} is not a cursor of this connection`);
}

function checkConnectionArgs(args: DefaultConnectionArguments): void {
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

/** A stored list read page by page: the total is counted apart. */
export interface PagedList<N> {
  count(): Promise<number>;
  page(offset: number, limit: number): Promise<N[]>;
}

/**
 * A connection over a stored list, counted only when a short page cannot tell the total, or first for
 * a window placed from the end (docs/performance.md, "The profile's reads").
 */
export async function listConnection<N>(args: DefaultConnectionArguments, list: PagedList<N>) {
  checkConnectionArgs(args);
  const options = { args, defaultSize: DEFAULT_PAGE_SIZE, maxSize: MAX_PAGE_SIZE };
  if (args.last != null || args.before != null) {
    const totalCount = await list.count();
    const connection = await resolveOffsetConnection({ ...options, totalCount }, ({ offset, limit }) =>
      list.page(offset, limit),
    );
    return { ...connection, totalCount };
  }
  let pageTotal: number | undefined;
  const connection = await resolveOffsetConnection(options, async ({ offset, limit }) => {
    const nodes = await list.page(offset, limit);
    // An empty page past the start says nothing about how many items lie before it.
    if (nodes.length < limit && (nodes.length > 0 || offset === 0)) pageTotal = offset + nodes.length;
    return nodes;
  });
  return { ...connection, totalCount: pageTotal ?? (() => list.count()) };
}

/** The longest offset a slice or cursor may name: far past any stored list, far below a float's integer range. */
const MAX_OFFSET = 1_000_000;

/**
 * A window of a stored list that has no connection (a file's pages, a turn's retrieved pages):
 * `first` in 0..100 (default 20) items from `offset` (0..1,000,000). The cost model reads `first`,
 * so what a query may walk is what it pays for.
 */
export function sliceList<T>(args: { first?: number | null; offset?: number | null }, items: readonly T[]): T[] {
  const first = args.first ?? DEFAULT_PAGE_SIZE;
  const offset = args.offset ?? 0;
  if (first < 0 || first > MAX_PAGE_SIZE)
    throw new BadUserInput("first", `must be between 0 and ${MAX_PAGE_SIZE}, got ${first}`);
  if (offset < 0 || offset > MAX_OFFSET)
    throw new BadUserInput("offset", `must be between 0 and ${MAX_OFFSET}, got ${offset}`);
  return items.slice(offset, offset + first);
}

/** A stored list the API returns whole up to `max` items (declared to the cost model as `listSize`). */
export const capList = <T>(items: readonly T[] | null | undefined, max: number): T[] =>
  Array.isArray(items) ? items.slice(0, max) : [];

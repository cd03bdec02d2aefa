// What every Mongo repository shares: each command runs through observeStoreCall, named
// `{collection}.{operation}` in store_call_duration_seconds, and the owner-filtered reads of
// LAYRA's user-owned collections answer only the caller's documents.
import type { Collection, Document, Filter, OptionalUnlessRequiredId, Sort } from "mongodb";
import type { PagedList } from "../../lib/pagination.js";
import { setTimeout as sleep } from "node:timers/promises";
import { observeStoreCall } from "../observe.js";

/** Runs one command of a collection, observed under `{collection}.{operation}`. */
export type Observed = <T>(operation: string, command: () => Promise<T>) => Promise<T>;

/** Resolves once the store's client has connected; rejects with UpstreamUnavailable when that takes too long. */
export type UntilConnected = () => Promise<void>;

export const observer =
  <D extends Document>(collection: Collection<D>, untilConnected: UntilConnected): Observed =>
  (operation, command) =>
    observeStoreCall(
      "mongo",
      async () => {
        await untilConnected();
        return retryWhileLocked(command);
      },
      `${collection.collectionName}.${operation}`,
    );

/** FerretDB's SQLite backend refusing a write that another writer's lock held up: nothing was written. */
const LOCKED = /SQLITE_BUSY|database is locked/;
const LOCKED_ATTEMPTS = 6;

/** Runs `command` again while the store answers that it is locked, a bounded number of times with backoff. */
async function retryWhileLocked<T>(command: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await command();
    } catch (error) {
      if (attempt >= LOCKED_ATTEMPTS || !(error instanceof Error) || !LOCKED.test(error.message)) throw error;
      // 25, 50, 100, 200, 400 ms, jittered so the writers that collided do not collide again.
      await sleep(25 * 2 ** (attempt - 1) * (0.5 + Math.random()));
    }
  }
}

/** Documents leave the repositories without Mongo's `_id`, as the gateway never exposes it. */
export const NO_ID = { _id: 0 } as const;

/**
 * Removes exactly these elements (as read) from an array field. A conditional `$pull` matches but
 * removes nothing on FerretDB (README, "Portable subset"), so callers read the elements first.
 */
export const pullExact = <D extends Document>(
  call: Observed,
  operation: string,
  collection: Collection<D>,
  filter: Filter<D>,
  path: string,
  elements: unknown[],
) => call(operation, () => collection.updateOne(filter, { $pullAll: { [path]: elements } } as Document));

/** The commands every user-owned collection shares. `live` narrows the by-id lookups (e.g. `is_delete: false`). */
export function ownedCollection<D extends Document & { username: string }>(
  collection: Collection<D>,
  idKey: keyof D & string,
  live: Document,
  untilConnected: UntilConnected,
) {
  const call = observer(collection, untilConnected);
  return {
    call,
    /** The caller's documents among `ids`, in one command (one batch past the most that can match, so never a getMore). */
    findByIds: (username: string, ids: readonly string[]) =>
      call(
        "findByIds",
        () =>
          collection
            .find({ ...live, [idKey]: { $in: [...ids] }, username } as Filter<D>, {
              batchSize: ids.length + 1,
              projection: NO_ID,
            })
            .toArray() as Promise<D[]>,
      ),
    /**
     * The first `limit` of a list (`list.has` tells its documents) and the caller's among `ids`, in one
     * command of `limit + ids.length`; when not `complete`, an id it missed is read by id
     * (docs/performance.md, "The profile's reads").
     */
    firstPageWithIds: async (
      username: string,
      list: { filter: Document; sort: Sort; has: (doc: D) => boolean },
      limit: number,
      ids: readonly string[],
    ) => {
      const wanted = new Set(ids);
      const count = limit + ids.length;
      const filter =
        ids.length === 0
          ? { ...list.filter, username }
          : { username, $or: [list.filter, { [idKey]: { $in: [...ids] } }] };
      const docs =
        count === 0
          ? []
          : await call(
              "firstPageWithIds",
              () =>
                // One batch past the most that can come back, so never a getMore.
                collection
                  .find(filter as Filter<D>, { sort: list.sort, limit: count, batchSize: count + 1, projection: NO_ID })
                  .toArray() as Promise<D[]>,
            );
      return {
        page: docs.filter(list.has).slice(0, limit),
        found: docs.filter((doc) => wanted.has(doc[idKey] as string)),
        complete: docs.length < count,
      };
    },
    /** The caller's listed documents (`is_delete: false`, which keeps temp knowledge bases out) in `sort` order. */
    list: (username: string, sort: Sort, extra: Document = {}): PagedList<D> => {
      const filter = { ...extra, username, is_delete: false } as unknown as Filter<D>;
      return {
        count: () => call("count", () => collection.countDocuments(filter)),
        page: (offset, limit) =>
          call(
            "list",
            () => collection.find(filter, { skip: offset, limit, sort, projection: NO_ID }).toArray() as Promise<D[]>,
          ),
      };
    },
    /** `$set` on one of the caller's listed (`is_delete: false`) documents; false when there is none. */
    update: (operation: string, username: string, id: string, set: Partial<D>) =>
      call(operation, () =>
        collection.updateOne({ [idKey]: id, username, is_delete: false } as unknown as Filter<D>, { $set: set }),
      ).then((result) => result.matchedCount === 1),
    /** Some fields of one of the caller's documents, listed or not (LAYRA's deletes have no is_delete filter). */
    findFields: <K extends keyof D & string>(operation: string, username: string, id: string, fields: K[]) =>
      call(operation, () =>
        collection.findOne({ [idKey]: id, username } as Filter<D>, {
          projection: { _id: 0, ...Object.fromEntries(fields.map((field) => [field, 1])) },
        }),
      ) as Promise<Pick<D, K> | null>,
    /** `{id, username}` of the documents among `ids`, any user's (for orphan checks that compare owners). */
    owners: (ids: string[]) =>
      call("owners", () =>
        collection
          .find({ [idKey]: { $in: ids } } as Filter<D>, { projection: { _id: 0, [idKey]: 1, username: 1 } })
          .toArray(),
      ) as Promise<Pick<D, "username" | typeof idKey>[]>,
    /** Deletes one of `username`'s documents; true when one was deleted. */
    deleteOwned: (username: string, id: string) =>
      call("delete", () => collection.deleteOne({ [idKey]: id, username } as Filter<D>)).then(
        (result) => result.deletedCount === 1,
      ),
  };
}

/** Inserts a document; false when its unique id is taken (a duplicate key). */
export async function insertUnique<D extends Document>(call: Observed, collection: Collection<D>, doc: D) {
  try {
    // A copy: the driver adds `_id` to what it inserts.
    await call("insert", () => collection.insertOne({ ...doc } as OptionalUnlessRequiredId<D>));
    return true;
  } catch (error) {
    if ((error as { code?: number }).code === 11000) return false;
    throw error;
  }
}

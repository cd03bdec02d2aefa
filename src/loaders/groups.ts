import DataLoader from "dataloader";
import { observedBatch } from "./observe.js";
import { scheduled, type FindOwned, type LoaderScope } from "./scope.js";

/**
 * Batches one repository read per batch and groups the caller's documents per key, in the order read.
 * Every document of a group is read: for lists a search scores whole (a base's files).
 */
export function groupLoader<D>(
  collection: string,
  key: keyof D & string,
  scope: LoaderScope,
  find: FindOwned<D>,
  stage = 0,
) {
  const { viewer, loaders } = scope;
  const keyOf = (doc: D) => doc[key] as string;
  const batch = observedBatch(`${collection}.by.${key}`, async (keys: readonly string[]) => {
    if (!viewer) return keys.map(() => []);
    const groups = new Map<string, D[]>(keys.map((k) => [k, []]));
    for (const doc of await loaders.reads.track(() => find(viewer.username, keys))) groups.get(keyOf(doc))?.push(doc);
    return keys.map((k) => groups.get(k) ?? []);
  });
  return new DataLoader<string, D[]>(batch, scheduled(loaders.reads, stage));
}

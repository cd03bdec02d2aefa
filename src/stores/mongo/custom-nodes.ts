// `nodes`: one document per user holding their saved workflow nodes under `custom_nodes.{name}`.
import type { Collection } from "mongodb";
import type { CustomNodesDoc } from "../documents.js";
import { NO_ID, observer, type UntilConnected } from "./collection.js";

export function customNodeRepository(collection: Collection<CustomNodesDoc>, untilConnected: UntilConnected) {
  const call = observer(collection, untilConnected);
  return {
    find: (username: string) =>
      call("find", () => collection.findOne({ username }, { projection: NO_ID })).then(
        (doc) => doc?.custom_nodes ?? {},
      ),
    /** Saves or replaces one node (LAYRA's dotted-path `$set`; the caller refuses names with `.` or a leading `$`). */
    save: (username: string, name: string, definition: Record<string, unknown>) =>
      call("save", () =>
        collection.updateOne(
          { username },
          { $set: { [`custom_nodes.${name}`]: definition }, $setOnInsert: { username } },
          { upsert: true },
        ),
      ).then(() => undefined),
    /** False when the caller has no node of that name. */
    remove: (username: string, name: string) => {
      const path = `custom_nodes.${name}`;
      return call("remove", () =>
        collection.updateOne({ username, [path]: { $exists: true } }, { $unset: { [path]: "" } }),
      ).then((result) => result.matchedCount === 1);
    },
  };
}

export type CustomNodeRepository = ReturnType<typeof customNodeRepository>;

// LAYRA's progress keys in the task database (docs/layra-contract.md, "Redis"): the `task:{id}` and
// `workflow:{id}` hashes, the `workflow:events:{id}` streams, and the keyspace notifications that say
// one of them changed. What to read and when is the progress watcher's (src/live/progress-watcher.ts).
import type { Redis } from "ioredis";
import { observeStoreCall } from "./observe.js";
import { errorMessage } from "../errors.js";

export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

/** One key of a batch read: a hash (with its time to live when polling), or a stream's entries after `afterId` (all when null). */
export type KeyRead =
  { kind: "hash"; key: string; withTtl: boolean } | { kind: "stream"; key: string; afterId: string | null };

/** What a batch read found, in the order of its `KeyRead`s. */
export type KeyState =
  /** `fields` is null when the key is missing; `ttlMs` is -1 unless asked for. */
  { kind: "hash"; fields: Record<string, string> | null; ttlMs: number } | { kind: "stream"; entries: StreamEntry[] };

/** A keyspace-notification subscription on a connection of its own. */
export interface KeyspaceSubscription {
  /** Subscribes to the patterns; again after a reconnection, since a restarted Redis forgot them. */
  subscribe(): Promise<void>;
  close(): Promise<void>;
}

export interface KeyspaceListener {
  onEvent(key: string, event: string): void;
  /** The connection is (again) ready. */
  onReady(): void;
  onClose(): void;
}

/** The notify-keyspace-events flags we need: K (keyspace channel), h (hash), g (del...), x (expired), t (stream). */
export function missingNotificationFlags(current: string): string {
  const all = current.includes("A"); // A = g$lshzxetd
  return ["K", "h", "g", "x", "t"].filter((flag) => !current.includes(flag) && !(all && flag !== "K")).join("");
}

/** Redis refused CONFIG: no permission (ACL), or the command was renamed away. */
function configForbidden(error: unknown): boolean {
  const message = errorMessage(error);
  return /NOPERM|unknown command|not allowed|no permissions/i.test(message);
}

// A key of another type (e.g. an id that names `workflow:{id}:state`) reads as missing, not as an outage.
const wrongType = (error: Error | null) => error !== null && /WRONGTYPE/.test(error.message);

function pairs(flat: string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return fields;
}

const entriesOf = (reply: [string, string[]][]): StreamEntry[] =>
  reply.map(([id, flat]) => ({ id, fields: pairs(flat) }));

/** `task` is the shared task-database connection; `connect()` opens one for subscribing; `taskDb` is its number. */
export function progressKeys(task: Redis, connect: () => Redis, taskDb: number) {
  const channelPrefix = `__keyspace@${taskDb}__:`;
  return {
    /** Reads every key of `reads` in one pipeline; rejects when Redis did not answer them all. */
    readBatch: async (reads: KeyRead[]): Promise<KeyState[]> => {
      const pipeline = task.pipeline();
      for (const read of reads) {
        if (read.kind === "hash") {
          pipeline.hgetall(read.key);
          if (read.withTtl) pipeline.pttl(read.key);
        } else pipeline.xrange(read.key, read.afterId === null ? "-" : `(${read.afterId}`, "+");
      }
      const results = (await observeStoreCall("redis", () => pipeline.exec(), "task.read"))!;
      const failed = results.find(([error]) => error && !wrongType(error));
      if (failed) throw failed[0] as Error;
      let i = 0;
      return reads.map((read): KeyState => {
        const [error, reply] = results[i++]!;
        if (read.kind === "stream")
          return { kind: "stream", entries: wrongType(error) ? [] : entriesOf(reply as [string, string[]][]) };
        const fields = wrongType(error) ? {} : (reply as Record<string, string>);
        const ttlMs = read.withTtl ? (results[i++]![1] as number) : -1;
        return { kind: "hash", fields: Object.keys(fields).length > 0 ? fields : null, ttlMs };
      });
    },

    /** The whole stream; a key of another type reads as empty. */
    readStream: async (key: string): Promise<StreamEntry[]> => {
      try {
        return entriesOf(await observeStoreCall("redis", () => task.xrange(key, "-", "+"), "task.xrange"));
      } catch (error) {
        if (error instanceof Error && wrongType(error)) return [];
        throw error;
      }
    },

    /**
     * Adds the notification flags the watcher needs; "forbidden" where CONFIG is not allowed (managed
     * Redis). CONFIG SET is lost when Redis restarts, so this runs again on every reconnection.
     */
    ensureKeyspaceNotifications: () =>
      observeStoreCall(
        "redis",
        async (): Promise<"enabled" | "forbidden"> => {
          try {
            const reply = (await task.call("CONFIG", "GET", "notify-keyspace-events")) as string[];
            const current = reply[1] ?? "";
            const missing = missingNotificationFlags(current);
            if (missing) await task.call("CONFIG", "SET", "notify-keyspace-events", current + missing);
            return "enabled";
          } catch (error) {
            if (configForbidden(error)) return "forbidden";
            throw error;
          }
        },
        "task.notifyKeyspaceEvents",
      ),

    /** Keyspace events of the keys matching `keyPatterns` (glob), on a connection of their own. */
    subscribeKeyspace: (keyPatterns: string[], listener: KeyspaceListener): KeyspaceSubscription => {
      const patterns = keyPatterns.map((pattern) => channelPrefix + pattern);
      const subscriber = connect();
      subscriber.on("pmessage", (_pattern: string, channel: string, event: string) =>
        listener.onEvent(channel.slice(channelPrefix.length), event),
      );
      subscriber.on("ready", () => listener.onReady());
      subscriber.on("close", () => listener.onClose());
      return {
        subscribe: () =>
          observeStoreCall("redis", () => subscriber.psubscribe(...patterns), "task.psubscribe").then(() => undefined),
        close: () =>
          subscriber.quit().then(
            () => undefined,
            () => subscriber.disconnect(),
          ),
      };
    },
  };
}

export type ProgressKeys = ReturnType<typeof progressKeys>;

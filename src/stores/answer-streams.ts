// What answers (docs/ask.md) share across replicas, in Redis: each answer's events in a stream
// `answer:events:{messageId}` (bounded, expiring) that any replica can follow from its start, a stop flag
// `answer:stop:{messageId}`, both in the task database, and each user's count of running answers
// `answer:running:{username}` in the cache database.
import type { Redis } from "ioredis";
import { observeStoreCall } from "./observe.js";

export interface AnswerEntry {
  id: string;
  /** The event as the answer wrote it (JSON). */
  event: string;
}

/** How long a follower's read waits for an event; its connection's command timeout is longer by this much. */
export const ANSWER_READ_BLOCK_MS = 5_000;

/** A connection of its own, for blocking reads of answer streams. */
export interface AnswerStreamReader {
  /** Entries after `afterId` ("0": from the start), waiting up to ANSWER_READ_BLOCK_MS for one; [] when none came. */
  read(messageId: string, afterId: string): Promise<AnswerEntry[]>;
  close(): void;
}

const eventsKey = (messageId: string) => `answer:events:${messageId}`;
const stopKey = (messageId: string) => `answer:stop:${messageId}`;
const runningKey = (username: string) => `answer:running:${username}`;

// INCR unless that would pass the limit; the key expires so that a crashed replica's answers stop counting.
const CLAIM = `local n = redis.call("INCR", KEYS[1])
if n > tonumber(ARGV[1]) then redis.call("DECR", KEYS[1]) return 0 end
redis.call("PEXPIRE", KEYS[1], ARGV[2])
return n`;
const RELEASE = `if tonumber(redis.call("GET", KEYS[1]) or "0") > 0 then return redis.call("DECR", KEYS[1]) end return 0`;

const entriesOf = (reply: [string, string[]][] | undefined): AnswerEntry[] =>
  (reply ?? []).map(([id, fields]) => ({ id, event: fields[fields.indexOf("e") + 1] ?? "{}" }));

export function answerStreams(task: Redis, cache: Redis, connect: () => Redis) {
  return {
    /** Counts one more running answer of `username`; false (nothing counted) when `max` are running. */
    claimUserSlot: async (username: string, max: number, ttlMs: number) =>
      (await observeStoreCall(
        "redis",
        () => cache.eval(CLAIM, 1, runningKey(username), max, ttlMs),
        "answers.claim",
      )) !== 0,
    releaseUserSlot: (username: string) =>
      observeStoreCall("redis", () => cache.eval(RELEASE, 1, runningKey(username)), "answers.release").then(
        () => undefined,
      ),
    /** Appends events (in order) to the answer's stream, keeping about `maxEvents`, readable `ttlSeconds` after. */
    append: async (messageId: string, events: string[], maxEvents: number, ttlSeconds: number, owner?: string) => {
      const key = eventsKey(messageId);
      const batch = task.multi();
      events.forEach((event, i) =>
        batch.xadd(
          key,
          "MAXLEN",
          "~",
          maxEvents,
          "*",
          ...(owner !== undefined && i === 0 ? ["owner", owner] : []),
          "e",
          event,
        ),
      );
      batch.expire(key, ttlSeconds);
      await observeStoreCall("redis", () => batch.exec(), "answers.append");
    },
    /** The user the answer belongs to (written with its first event); null when there is no such answer. */
    owner: async (messageId: string): Promise<string | null> => {
      const first = await observeStoreCall(
        "redis",
        () => task.xrange(eventsKey(messageId), "-", "+", "COUNT", 1),
        "answers.owner",
      );
      const fields = first[0]?.[1] ?? [];
      const at = fields.indexOf("owner");
      return at === -1 ? null : (fields[at + 1] ?? null);
    },
    requestStop: (messageId: string, ttlSeconds: number) =>
      observeStoreCall("redis", () => task.set(stopKey(messageId), "1", "EX", ttlSeconds), "answers.stop").then(
        () => undefined,
      ),
    stopRequested: async (messageId: string) =>
      (await observeStoreCall("redis", () => task.exists(stopKey(messageId)), "answers.stopRequested")) === 1,
    reader: (): AnswerStreamReader => {
      const redis = connect();
      redis.on("error", () => {
        // Surfaces through the failing read.
      });
      return {
        read: async (messageId, afterId) => {
          const reply = await observeStoreCall<[string, [string, string[]][]][] | null>(
            "redis",
            () => redis.xread("COUNT", 500, "BLOCK", ANSWER_READ_BLOCK_MS, "STREAMS", eventsKey(messageId), afterId),
            "answers.read",
          );
          return entriesOf(reply?.[0]?.[1]);
        },
        close: () => redis.disconnect(),
      };
    },
  };
}

export type AnswerStreams = ReturnType<typeof answerStreams>;

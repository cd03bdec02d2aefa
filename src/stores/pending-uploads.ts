// Presigned uploads waiting for commitUploads, and the per-bucket index a sweep finds the objects of
// uncommitted ones by: docs/ingestion.md, "Uploads that are never committed".
import type { Redis } from "ioredis";
import { observeStoreCall } from "./observe.js";

/** A presigned upload waiting for commitUploads: what was declared, where each PUT and original go. */
export interface PendingUpload {
  username: string;
  knowledgeBaseId: string;
  files: {
    fileId: string;
    filename: string;
    contentType: string;
    size: number;
    /** Where the commit copies the original to (LAYRA's key shape). */
    objectKey: string;
    /** Where the presigned PUT writes. */
    stagingKey: string;
  }[];
}

/** An upload a sweeper now owns: its objects are to be removed. */
interface ClaimedUpload {
  uploadId: string;
  objectKeys: string[];
}

/** What a commit's claim found: the upload is the caller's to start (until `deadline`), past its deadline, or not there. */
type CommitClaim = { state: "claimed"; deadline: number } | { state: "expired" } | { state: "gone" };

const NOW_MS = `local clock = redis.call("TIME")
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)`;

// KEYS: record, due, objects. ARGV: upload id, record JSON, object keys JSON. Writes an upload's
// record, living until `deadline`, and its index entry, due then.
const PUT_UNTIL = (deadline: string) => `local deadline = ${deadline}
redis.call("SET", KEYS[1], ARGV[2], "PXAT", deadline)
redis.call("HSET", KEYS[3], ARGV[1], ARGV[3])
redis.call("ZADD", KEYS[2], deadline, ARGV[1])
return 1`;
// ARGV[4]: milliseconds to the deadline, on Redis's clock.
const SAVE = `${NOW_MS}
${PUT_UNTIL("now + tonumber(ARGV[4])")}`;

// KEYS: record, due, sweeping, objects, expired marker. ARGV: upload id. Before the deadline the
// commit takes the upload out of the index; from the deadline on only a sweeper can take it.
const CLAIM_FOR_COMMIT = `${NOW_MS}
local deadline = redis.call("ZSCORE", KEYS[2], ARGV[1])
if deadline then
  if now >= tonumber(deadline) then return {"expired"} end
  redis.call("ZREM", KEYS[2], ARGV[1])
  redis.call("HDEL", KEYS[4], ARGV[1])
  redis.call("DEL", KEYS[1])
  return {"claimed", deadline}
end
if redis.call("ZSCORE", KEYS[3], ARGV[1]) or redis.call("EXISTS", KEYS[5]) == 1 then return {"expired"} end
return {"gone"}`;

// ARGV[4]: the deadline (ms). Puts a claimed upload back as it was (a record past its deadline
// expires at once, and the entry is due).
const RESTORE = PUT_UNTIL("tonumber(ARGV[4])");

// KEYS: due, sweeping, objects. ARGV: most uploads to take, claim lifetime in ms. Takes uploads past
// their deadline, then claims that lapsed (a sweeper that failed or died), each for one sweeper
// until its claim lapses; answers [id, object keys JSON, ...].
const CLAIM_DUE = `${NOW_MS}
local limit = tonumber(ARGV[1])
local lapse = now + tonumber(ARGV[2])
local claimed = {}
local function take(id)
  redis.call("ZADD", KEYS[2], lapse, id)
  table.insert(claimed, id)
  table.insert(claimed, redis.call("HGET", KEYS[3], id) or "[]")
end
for _, id in ipairs(redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", now, "LIMIT", 0, limit)) do
  redis.call("ZREM", KEYS[1], id)
  take(id)
end
local left = limit - #claimed / 2
if left > 0 then
  for _, id in ipairs(redis.call("ZRANGEBYSCORE", KEYS[2], "-inf", now, "LIMIT", 0, left)) do take(id) end
end
return claimed`;

// KEYS: sweeping, objects, expired marker. ARGV: upload id, marker lifetime in seconds. 1 for the one
// sweeper that ends the entry (two whose claims overlapped both removed the same objects; one counts).
const FINISH_SWEEP = `if redis.call("ZREM", KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call("HDEL", KEYS[2], ARGV[1])
redis.call("SET", KEYS[3], "1", "EX", ARGV[2])
return 1`;

const recordKey = (uploadId: string) => `upload:${uploadId}`;
/** What an index entry holds: the keys the PUTs write, nothing else (an uncommitted upload has no originals). */
const objectKeysOf = (upload: PendingUpload) => JSON.stringify(upload.files.map((file) => file.stagingKey));
const expiredKey = (uploadId: string) => `upload_expired:${uploadId}`;

export interface PendingUploads {
  /** Saves the upload and indexes its object keys; both end at the deadline, `ttlMs` from now on Redis's clock. */
  save(uploadId: string, upload: PendingUpload, ttlMs: number): Promise<void>;
  read(uploadId: string): Promise<PendingUpload | null>;
  /** Takes the upload out of the index for its commit: exactly one of a commit and the sweepers wins. */
  claimForCommit(uploadId: string): Promise<CommitClaim>;
  /** Undoes a commit's claim (the task could not be queued): the same commit can be retried until the deadline. */
  restore(uploadId: string, upload: PendingUpload, deadline: number): Promise<void>;
  /** True when the upload passed its deadline uncommitted (indexed, being swept, or swept). */
  isExpired(uploadId: string): Promise<boolean>;
  /** Up to `limit` uploads past their deadline, each claimed by this sweeper for `claimMs`. */
  claimDue(limit: number, claimMs: number): Promise<ClaimedUpload[]>;
  /** Ends a swept upload's entry; true for the one sweeper whose call ended it. */
  finishSweep(uploadId: string, expiredNoticeSeconds: number): Promise<boolean>;
}

/** The pending uploads of one bucket, in the Redis task database. */
export function pendingUploads(redis: Redis, bucket: string): PendingUploads {
  const index = {
    due: `upload_sweep:${bucket}:due`,
    sweeping: `upload_sweep:${bucket}:sweeping`,
    objects: `upload_sweep:${bucket}:objects`,
  };
  const call = <T>(operation: string, work: () => Promise<T>) => observeStoreCall("redis", work, operation);
  /** Runs one of the PUT_UNTIL scripts: `when` is its ARGV[4]. */
  const put = async (operation: string, script: string, uploadId: string, upload: PendingUpload, when: number) => {
    await call(operation, () =>
      redis.eval(
        script,
        3,
        recordKey(uploadId),
        index.due,
        index.objects,
        uploadId,
        JSON.stringify(upload),
        objectKeysOf(upload),
        when,
      ),
    );
  };
  return {
    save: (uploadId, upload, ttlMs) => put("upload.save", SAVE, uploadId, upload, ttlMs),
    read: async (uploadId) => {
      const raw = await call("upload.read", () => redis.get(recordKey(uploadId)));
      return raw ? (JSON.parse(raw) as PendingUpload) : null;
    },
    claimForCommit: async (uploadId) => {
      const [state, deadline] = (await call("upload.claim", () =>
        redis.eval(
          CLAIM_FOR_COMMIT,
          5,
          recordKey(uploadId),
          index.due,
          index.sweeping,
          index.objects,
          expiredKey(uploadId),
          uploadId,
        ),
      )) as [CommitClaim["state"], string?];
      return state === "claimed" ? { state, deadline: Number(deadline) } : { state };
    },
    restore: (uploadId, upload, deadline) => put("upload.restore", RESTORE, uploadId, upload, deadline),
    isExpired: async (uploadId) => {
      const replies = await call("upload.expired", () =>
        redis.multi().zscore(index.due, uploadId).zscore(index.sweeping, uploadId).exists(expiredKey(uploadId)).exec(),
      );
      const [due, sweeping, marked] = (replies ?? []).map(([error, value]) => {
        if (error) throw error;
        return value;
      });
      return due !== null || sweeping !== null || marked === 1;
    },
    claimDue: async (limit, claimMs) => {
      const flat = (await call("upload.claimDue", () =>
        redis.eval(CLAIM_DUE, 3, index.due, index.sweeping, index.objects, limit, claimMs),
      )) as string[];
      const claimed: ClaimedUpload[] = [];
      for (let i = 0; i < flat.length; i += 2)
        claimed.push({ uploadId: flat[i]!, objectKeys: JSON.parse(flat[i + 1]!) as string[] });
      return claimed;
    },
    finishSweep: async (uploadId, expiredNoticeSeconds) =>
      (await call("upload.finishSweep", () =>
        redis.eval(
          FINISH_SWEEP,
          3,
          index.sweeping,
          index.objects,
          expiredKey(uploadId),
          uploadId,
          expiredNoticeSeconds,
        ),
      )) === 1,
  };
}

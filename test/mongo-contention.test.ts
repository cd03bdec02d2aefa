// Concurrent writers of one knowledge base on the local FerretDB (SQLite), which answers
// `database is locked (SQLITE_BUSY)` when writers collide: the gateway's Mongo calls run such a
// write again, a bounded number of times, so ingesting many files into one base at once loses none.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import type { Collection } from "mongodb";
import { observer } from "../src/stores/mongo/collection.js";
import type { FileDoc } from "../src/stores/documents.js";
import { lockKey } from "../src/stores/lock.js";
import { gatewayForFile, uniqueName } from "./helpers.js";

const state = gatewayForFile();

test("40 files ingested at once into one base, by four writers each: every write lands, nothing fails", async () => {
  const { mongo, redis } = state.gateway.app.stores;
  const username = uniqueName("busy");
  const knowledgeBaseId = `${username}_${randomUUID()}`;
  const now = new Date();
  await mongo.knowledgeBases.insert({
    knowledge_base_id: knowledgeBaseId,
    knowledge_base_name: "contended",
    username,
    files: [],
    used_chat: [],
    created_at: now,
    last_modify_at: now,
    is_delete: false,
  });
  // What a worker writes per file (src/resolvers/ingestion/worker.ts): its document, then its ref
  // under the base's lock, while 39 others do the same. A collision is likely, not certain: the
  // test below pins the retry itself.
  const failures: string[] = [];
  for (let round = 0; round < 3; round++) {
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const fileId = `${username}_${randomUUID()}`;
        const file: FileDoc = {
          file_id: fileId,
          filename: `f${round}-${i}.pdf`,
          username,
          minio_filename: `${username}_f${round}-${i}_${"0".repeat(24)}.pdf`,
          minio_url: "",
          knowledge_db_id: knowledgeBaseId,
          images: Array.from({ length: 20 }, (_, page) => ({
            images_id: `${username}_${randomUUID()}`,
            minio_filename: `${username}_p${page}_${"0".repeat(24)}.png`,
            minio_url: "",
            page_number: page,
          })),
          created_at: now,
          last_modify_at: now,
          is_delete: false,
        };
        try {
          await mongo.files.insert(file);
          await redis.locks.holdWhenFree(lockKey("ingest_kb_files", knowledgeBaseId), 30_000, () =>
            mongo.knowledgeBases.pushFileRef(knowledgeBaseId, {
              file_id: fileId,
              filename: file.filename,
              minio_filename: file.minio_filename,
              minio_url: "",
              created_at: now,
            }),
          );
        } catch (error) {
          failures.push((error as Error).message.slice(-80));
        }
      }),
    );
  }
  assert.deepEqual(failures, []);
  const base = await mongo.knowledgeBases.findById(knowledgeBaseId);
  assert.equal(base?.files.length, 120);
});

test("a store that stays locked fails after a bounded number of tries; other errors are not retried", async () => {
  let calls = 0;
  const call = observer({ collectionName: "fake" } as Collection, async () => {});
  const locked = () => {
    calls++;
    return Promise.reject(new Error("database is locked (5) (SQLITE_BUSY)"));
  };
  await assert.rejects(call("write", locked), /SQLITE_BUSY/);
  assert.equal(calls, 6);
  calls = 0;
  let busyOnce = true;
  assert.equal(
    await call("write", async () => {
      calls++;
      if (busyOnce) {
        busyOnce = false;
        throw new Error("database is locked (5) (SQLITE_BUSY)");
      }
      return "written";
    }),
    "written",
  );
  assert.equal(calls, 2);
  calls = 0;
  await assert.rejects(
    call("write", () => {
      calls++;
      return Promise.reject(new Error("E11000 duplicate key"));
    }),
    /E11000/,
  );
  assert.equal(calls, 1);
});

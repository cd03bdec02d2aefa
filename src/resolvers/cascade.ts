// Complete, retryable cascades (DESIGN.md decision 6). A cascade is a list of idempotent steps run
// in order under a Redis DB 2 lock; the steps delete dependent data before the document that names
// it, so when a store fails part-way the same mutation, run again, finds what is left and finishes.
import type { StoreAccess } from "../context.js";
import { CascadeIncomplete, Conflict, NotFound, UpstreamUnavailable } from "../errors.js";
import type { KnowledgeBaseDoc, TurnDoc } from "../stores/documents.js";
import { acquireLock, extendLock, lockKey, releaseLock } from "../stores/lock.js";
import { removeBaseUsedReferences } from "./model-config.js";

export interface CascadeStep {
  /** What the step deletes, as reported in `extensions.remaining` when it (or a later step) is left. */
  name: string;
  run(): Promise<unknown>;
}

const reasonOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Runs the steps in order; a failure reports the failed step and every later one as left. */
export async function runCascade(what: string, steps: CascadeStep[]): Promise<void> {
  for (const [index, step] of steps.entries()) {
    try {
      await step.run();
    } catch (error) {
      if (error instanceof Conflict || error instanceof NotFound) throw error;
      const later = steps.slice(index + 1).map((s) => s.name);
      // A nested cascade (a conversation's temp knowledge base) reports its own remaining steps.
      const left = error instanceof CascadeIncomplete ? error.remaining.map((r) => `${step.name}: ${r}`) : [step.name];
      throw new CascadeIncomplete(what, [...left, ...later], reasonOf(error));
    }
  }
}

/**
 * Runs `work` holding the locks `lock:{kind}:{id}` for every id (taken in sorted order); when
 * another request holds one, this answers CONFLICT at once and changes nothing.
 */
export async function withLocks<T>(context: StoreAccess, kind: string, ids: readonly string[], work: () => Promise<T>): Promise<T> {
  const [id, ...rest] = [...new Set(ids)].sort();
  if (id === undefined) return work();
  const redis = context.stores.redis.lock;
  const key = lockKey(kind, id);
  let token: string | null;
  try {
    token = await acquireLock(redis, key, context.config.lockTtlMs);
  } catch (error) {
    throw new UpstreamUnavailable("redis", reasonOf(error));
  }
  if (!token) throw new Conflict(`${kind.replaceAll("_", " ")} ${JSON.stringify(id)} is being changed by another request; try again when it has finished`);
  // Renewed while the work runs, so a slow cascade keeps its lock; a crashed one loses it after LOCK_TTL_MS.
  const renewal = setInterval(() => void extendLock(redis, key, token, context.config.lockTtlMs).catch(() => false), context.config.lockTtlMs / 3);
  renewal.unref();
  try {
    return await withLocks(context, kind, rest, work);
  } finally {
    clearInterval(renewal);
    // A release that fails leaves the lock to expire after LOCK_TTL_MS.
    await releaseLock(redis, key, token).catch(() => false);
  }
}

/**
 * Deletes one knowledge base of `owner` everywhere: the Milvus collection, the S3 originals and
 * page PNGs, the `files` documents, the `base_used` references to it, and last the knowledge-base
 * document (LAYRA's delete_knowledge_base plus what it leaves behind). `ifMissing: "sweep"` is for
 * temp bases named by a conversation: with no document left, whatever else remains is still removed.
 * Returns whether a knowledge-base document was deleted.
 */
export function deleteKnowledgeBaseCascade(
  context: StoreAccess,
  owner: string,
  knowledgeBaseId: string,
  ifMissing: "not-found" | "sweep" = "not-found",
): Promise<boolean> {
  const { mongo, milvus, s3 } = context.stores;
  return withLocks(context, "knowledge_base", [knowledgeBaseId], async () => {
    const kb = await mongo.knowledgeBases.findOne({ knowledge_base_id: knowledgeBaseId, username: owner }, { projection: { _id: 0 } });
    if (!kb && ifMissing === "not-found") throw new NotFound("knowledge base", knowledgeBaseId);
    const files = await mongo.files.find({ knowledge_db_id: knowledgeBaseId, username: owner }, { projection: { _id: 0 } }).toArray();
    const objectKeys = [
      ...files.flatMap((file) => [file.minio_filename, ...file.images.map((image) => image.minio_filename)]),
      // A ref whose files document is gone (or not yet written) still names its original.
      ...(kb?.files ?? []).map((ref) => ref.minio_filename),
    ];
    await runCascade(`deleting knowledge base ${JSON.stringify(knowledgeBaseId)}`, [
      { name: "milvus collection", run: () => milvus.dropCollection(knowledgeBaseId) },
      { name: "s3 objects", run: () => s3.removeObjects([...new Set(objectKeys.filter(Boolean))]) },
      { name: "files documents", run: () => mongo.files.deleteMany({ knowledge_db_id: knowledgeBaseId, username: owner }) },
      { name: "base_used references", run: () => removeBaseUsedReferences(context, knowledgeBaseId) },
      { name: "knowledge base document", run: () => mongo.knowledgeBases.deleteOne({ knowledge_base_id: knowledgeBaseId, username: owner }) },
    ]);
    return kb !== null;
  });
}

/**
 * The temp knowledge bases a conversation's or chatflow's turns name (`temp_db`). A base counts
 * only when its id carries the conversation's own prefix (`temp_{conversationId}_`, as LAYRA names
 * them) or it is a temp base (`is_delete: true`) of `owner`. LAYRA's chat endpoint takes `temp_db`
 * from the client, so a turn may name a normal knowledge base or someone else's: those are left alone.
 */
export async function tempKnowledgeBasesOf(context: StoreAccess, owner: string, parentId: string, turns: Pick<TurnDoc, "temp_db">[]) {
  const named = [...new Set(turns.map((turn) => turn.temp_db).filter((id): id is string => typeof id === "string" && id !== ""))];
  if (named.length === 0) return [];
  const owned = await context.stores.mongo.knowledgeBases
    .find({ knowledge_base_id: { $in: named }, username: owner, is_delete: true }, { projection: { knowledge_base_id: 1 } })
    .toArray();
  const ownedIds = new Set(owned.map((kb: Pick<KnowledgeBaseDoc, "knowledge_base_id">) => kb.knowledge_base_id));
  return named.filter((id) => ownedIds.has(id) || id.startsWith(`temp_${parentId}_`));
}

/** The cascade steps that delete a conversation's or chatflow's temp knowledge bases. */
export async function tempKnowledgeBaseSteps(context: StoreAccess, owner: string, parentId: string, turns: Pick<TurnDoc, "temp_db">[]): Promise<CascadeStep[]> {
  return (await tempKnowledgeBasesOf(context, owner, parentId, turns)).map((id) => ({
    name: `temporary knowledge base ${id}`,
    run: () => deleteKnowledgeBaseCascade(context, owner, id, "sweep"),
  }));
}

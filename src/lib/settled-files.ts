import { BackgroundJobs } from "./background-jobs.js";

/** What the cache needs of a `files` document: its id, and its pages to size it. */
interface FileLike {
  file_id: string;
  images: readonly unknown[];
}

/**
 * Files whose page list can no longer change, by knowledge base: a search lists such a file from here while
 * its base still refs it, instead of reading the base's `files` documents again (docs/architecture.md,
 * "Settled files"). A file is settled once its document lists every page Milvus holds of it: LAYRA and
 * the gateway write a file's rows before its document and only ever append pages to it, so from then on
 * only a delete changes it, and a delete first pulls the file's ref from the base.
 *
 * Bounded by pages (a page costs its document entry, about a kilobyte); least recently used bases go
 * first. Written here rather than with lru-cache because a base's entry is sized by its files, which
 * grow one at a time.
 */
export class SettledFiles<FileDoc extends FileLike> {
  private readonly bases = new Map<string, Map<string, FileDoc>>();
  private pages = 0;
  /** The settling checks searches start: one per base at a time. */
  readonly checks = new BackgroundJobs();

  constructor(readonly maxPages: number) {}

  /**
   * The settled documents of these files of the base, in their order, and the ids not settled here. Entries of
   * files the base no longer refs are dropped: those files are being deleted.
   */
  lookup(knowledgeBaseId: string, fileIds: readonly string[]): { settled: FileDoc[]; unsettled: string[] } {
    const base = this.bases.get(knowledgeBaseId);
    if (!base) return { settled: [], unsettled: [...fileIds] };
    this.bases.delete(knowledgeBaseId);
    this.bases.set(knowledgeBaseId, base);
    const wanted = new Set(fileIds);
    for (const [fileId, doc] of base)
      if (!wanted.has(fileId)) {
        base.delete(fileId);
        this.pages -= doc.images.length;
      }
    const settled: FileDoc[] = [];
    const unsettled: string[] = [];
    for (const fileId of fileIds) {
      const doc = base.get(fileId);
      if (doc) settled.push(doc);
      else unsettled.push(fileId);
    }
    return { settled, unsettled };
  }

  /** Records these documents of the base's files as settled. */
  settle(knowledgeBaseId: string, docs: readonly FileDoc[]): void {
    let base = this.bases.get(knowledgeBaseId);
    if (!base) this.bases.set(knowledgeBaseId, (base = new Map()));
    for (const doc of docs) {
      this.pages += doc.images.length - (base.get(doc.file_id)?.images.length ?? 0);
      base.set(doc.file_id, doc);
    }
    for (const id of this.bases.keys()) {
      if (this.pages <= this.maxPages) break;
      this.forget(id);
    }
  }

  /** Forgets a base (deleted). */
  forget(knowledgeBaseId: string): void {
    for (const doc of this.bases.get(knowledgeBaseId)?.values() ?? []) this.pages -= doc.images.length;
    this.bases.delete(knowledgeBaseId);
  }

  stats(): { bases: number; pages: number; maxPages: number } {
    return { bases: this.bases.size, pages: this.pages, maxPages: this.maxPages };
  }
}

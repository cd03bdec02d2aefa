// An in-process cache of pages (their float32 vectors, or their compact codes: src/lib/page-codes.ts), least
// recently used first out under a byte budget, never stale since a page's vectors never change
// (docs/performance.md, "Search: the page-vector cache"). Hand-written: a Map keeps insertion order, so an LRU
// is a few lines, and eviction by knowledge base needs a per-base index LRU packages lack.

/** Per entry beyond its arrays: the entry object, two Map/Set slots and the typed-array headers. */
export const ENTRY_OVERHEAD_BYTES = 200;

export interface PageVectorCacheStats {
  hits: number;
  misses: number;
  evictions: number;
  bytes: number;
  pages: number;
  budgetBytes: number;
}

/** What the cache holds per page: anything that says its size. */
interface Sized {
  readonly byteLength: number;
}

interface Entry<T> {
  knowledgeBaseId: string;
  imageId: string;
  vectors: T;
}

export class PageVectorCache<T extends Sized = Float32Array> {
  /** knowledge base id -> image id -> entry. */
  private readonly bases = new Map<string, Map<string, Entry<T>>>();
  /** Every entry, least recently used first (a Set keeps insertion order; re-adding moves to the end). */
  private readonly order = new Set<Entry<T>>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;

  constructor(readonly budgetBytes: number) {}

  get enabled(): boolean {
    return this.budgetBytes > 0;
  }

  /** The cached pages among `imageIds` (each counted as a hit and made most recent) and the rest. */
  lookup(knowledgeBaseId: string, imageIds: readonly string[]): { found: Map<string, T>; missing: string[] } {
    const found = new Map<string, T>();
    const missing: string[] = [];
    const pages = this.bases.get(knowledgeBaseId);
    for (const imageId of imageIds) {
      const entry = pages?.get(imageId);
      if (entry === undefined) {
        missing.push(imageId);
        continue;
      }
      this.order.delete(entry);
      this.order.add(entry);
      found.set(imageId, entry.vectors);
    }
    this.hits += found.size;
    this.misses += missing.length;
    return { found, missing };
  }

  /** The bytes the cached ones among these pages take and the pages it lacks, without counting a use. */
  holding(knowledgeBaseId: string, imageIds: readonly string[]): { bytes: number; missing: string[] } {
    const held = this.bases.get(knowledgeBaseId);
    let bytes = 0;
    const missing: string[] = [];
    for (const imageId of imageIds) {
      const entry = held?.get(imageId);
      if (entry === undefined) missing.push(imageId);
      else bytes += entryBytes(entry.vectors);
    }
    return { bytes, missing };
  }

  /** All these pages, or null when any is not cached; no use is counted and no page is made recent. */
  peek(knowledgeBaseId: string, imageIds: readonly string[]): Map<string, T> | null {
    const held = this.bases.get(knowledgeBaseId);
    const pages = new Map<string, T>();
    for (const imageId of imageIds) {
      const entry = held?.get(imageId);
      if (entry === undefined) return null;
      pages.set(imageId, entry.vectors);
    }
    return pages;
  }

  /** Whether any page of this knowledge base is cached. */
  holdsAny(knowledgeBaseId: string): boolean {
    return (this.bases.get(knowledgeBaseId)?.size ?? 0) > 0;
  }

  /** Average bytes per cached page, or null while the cache is empty. */
  averagePageBytes(): number | null {
    return this.order.size === 0 ? null : this.bytes / this.order.size;
  }

  /** Stores a complete page, evicting the least recently used pages past the budget. */
  set(knowledgeBaseId: string, imageId: string, vectors: T): void {
    if (entryBytes(vectors) > this.budgetBytes) return;
    let pages = this.bases.get(knowledgeBaseId);
    if (!pages) this.bases.set(knowledgeBaseId, (pages = new Map()));
    const previous = pages.get(imageId);
    if (previous) this.remove(previous);
    const entry = { knowledgeBaseId, imageId, vectors };
    pages.set(imageId, entry);
    this.order.add(entry);
    this.bytes += entryBytes(vectors);
    for (const oldest of this.order) {
      if (this.bytes <= this.budgetBytes) break;
      this.remove(oldest);
      this.evictions++;
    }
  }

  /**
   * Stores a complete page only if it fits in the room left, evicting nothing: for pages read for another
   * purpose (a warm-up coding a whole base), which must not push out pages that searches have used.
   */
  setIfRoom(knowledgeBaseId: string, imageId: string, vectors: T): void {
    if (this.bytes + entryBytes(vectors) <= this.budgetBytes && !this.bases.get(knowledgeBaseId)?.has(imageId))
      this.set(knowledgeBaseId, imageId, vectors);
  }

  /** Frees a knowledge base's pages (all of them, or the given ones), e.g. after we deleted them. */
  evict(knowledgeBaseId: string, imageIds?: readonly string[]): void {
    const pages = this.bases.get(knowledgeBaseId);
    if (!pages) return;
    for (const imageId of imageIds ?? [...pages.keys()]) {
      const entry = pages.get(imageId);
      if (entry) this.remove(entry);
    }
  }

  clear(): void {
    this.bases.clear();
    this.order.clear();
    this.bytes = 0;
  }

  stats(): PageVectorCacheStats {
    const { hits, misses, evictions, bytes, budgetBytes } = this;
    return { hits, misses, evictions, bytes, pages: this.order.size, budgetBytes };
  }

  private remove(entry: Entry<T>): void {
    if (!this.order.delete(entry)) return;
    this.bytes -= entryBytes(entry.vectors);
    const pages = this.bases.get(entry.knowledgeBaseId)!;
    pages.delete(entry.imageId);
    if (pages.size === 0) this.bases.delete(entry.knowledgeBaseId);
  }
}

const entryBytes = (vectors: Sized) => vectors.byteLength + ENTRY_OVERHEAD_BYTES;

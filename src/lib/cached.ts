// One result shared by every caller for `ttlMs`, and one call in flight at a time: a flood of
// callers costs the work once per window. Hand-written because it is eight lines and needs no
// eviction, keys or stale-while-revalidate that a caching library would bring.
export function cachedSingleFlight<T>(ttlMs: number, work: () => Promise<T>, now = () => Date.now()): () => Promise<T> {
  let current: { promise: Promise<T>; settledAt: number | null } | null = null;
  return () => {
    if (current && (current.settledAt === null || now() - current.settledAt < ttlMs)) return current.promise;
    const entry: { promise: Promise<T>; settledAt: number | null } = { promise: work(), settledAt: null };
    const settle = () => void (entry.settledAt = now());
    entry.promise.then(settle, settle);
    current = entry;
    return entry.promise;
  };
}

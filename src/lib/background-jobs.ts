/**
 * Background work keyed by knowledge base: at most one job per key runs at a time (a second start while
 * one runs is dropped), and a failed job is dropped too, since each is only a shortcut a later search
 * starts again.
 */
export class BackgroundJobs {
  private readonly running = new Map<string, Promise<void>>();

  /** Starts `job` unless one is running for `key`. */
  start(key: string, job: () => Promise<void>): void {
    if (this.running.has(key)) return;
    this.running.set(
      key,
      job()
        .catch(() => undefined)
        .finally(() => this.running.delete(key)),
    );
  }

  /** Resolves when no job is running (benchmarks and tests wait on it). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running.values());
  }
}

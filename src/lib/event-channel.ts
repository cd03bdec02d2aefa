// A push-based async iterator for subscriptions. A plain `async function*` cannot be stopped while it
// awaits its next event (return() waits behind the pending await), so a client that disconnects from a
// quiet task would keep its listener until the next change. Here return() runs the cleanup at once.

export class EventChannel<T> implements AsyncIterableIterator<T> {
  private readonly queue: T[] = [];
  private readonly waiting: { resolve(result: IteratorResult<T>): void; reject(error: unknown): void }[] = [];
  private ended = false;
  /** Given by `fail`: the next `next()` rejects with it, once. */
  private failure: { error: unknown } | null = null;
  private readonly cleanups: (() => void)[] = [];

  /** Queues an event; ignored once the channel has ended. */
  push(value: T): void {
    if (this.ended) return;
    const next = this.waiting.shift();
    if (next) next.resolve({ value, done: false });
    else this.queue.push(value);
  }

  /** No more events: queued ones are still delivered, then the iterator completes. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.runCleanups();
    for (const next of this.waiting.splice(0)) next.resolve({ value: undefined, done: true });
  }

  /** Ends the channel with an error: a pending `next()`, else the next one, rejects with it; queued events are dropped. */
  fail(error: unknown): void {
    if (this.ended) return;
    this.queue.length = 0;
    const waiting = this.waiting.splice(0);
    if (waiting.length === 0) this.failure = { error };
    this.end();
    for (const next of waiting) next.reject(error);
  }

  /** Runs when the channel ends, from either side. */
  onEnd(cleanup: () => void): void {
    if (this.ended) cleanup();
    else this.cleanups.push(cleanup);
  }

  get isEnded(): boolean {
    return this.ended;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.queue.length > 0) return Promise.resolve({ value: this.queue.shift()!, done: false });
    if (this.failure) {
      const { error } = this.failure;
      this.failure = null;
      return Promise.reject(error);
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    this.queue.length = 0;
    this.failure = null;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    this.return();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private runCleanups(): void {
    for (const cleanup of this.cleanups.splice(0)) {
      try {
        cleanup();
      } catch {
        // Cleanups are independent; one failing must not keep the others from running.
      }
    }
  }
}

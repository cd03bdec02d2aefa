// A push-based async iterator for subscriptions. A plain `async function*` cannot be stopped while it
// awaits its next event (return() waits behind the pending await), so a client that disconnects from a
// quiet task would keep its listener until the next change. Here return() runs the cleanup at once.

export class EventChannel<T> implements AsyncIterableIterator<T> {
  private readonly queue: T[] = [];
  private readonly waiting: ((result: IteratorResult<T>) => void)[] = [];
  private ended = false;
  private readonly cleanups: (() => void)[] = [];

  /** Queues an event; ignored once the channel has ended. */
  push(value: T): void {
    if (this.ended) return;
    const next = this.waiting.shift();
    if (next) next({ value, done: false });
    else this.queue.push(value);
  }

  /** No more events: queued ones are still delivered, then the iterator completes. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.runCleanups();
    for (const next of this.waiting.splice(0)) next({ value: undefined, done: true });
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
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  return(): Promise<IteratorResult<T>> {
    this.queue.length = 0;
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

// Hands one change to many listeners a slice at a time, a macrotask between slices, so a task with
// thousands of subscribers does not hold every other request and socket for its whole fan-out
// (docs/performance.md, "Live progress").

interface Pending {
  /** The listeners when the change came, in order. */
  listeners: unknown[];
  next: number;
  /** The live set: a listener no longer in it is skipped. */
  current: ReadonlySet<unknown>;
  deliver(listener: unknown): void;
}

export class SlicedFanOut {
  private readonly queue: Pending[] = [];
  private scheduled = false;

  /** `slice`: listener calls per macrotask. */
  constructor(private readonly slice: number) {}

  /**
   * Calls `deliver(listener)` for each of `listeners` as they are now, in order, after every earlier
   * fan-out's listeners: a listener sees changes in the order they were added. A listener removed
   * from the set before its turn is skipped. A listener that throws does not stop the others.
   */
  add<L>(listeners: ReadonlySet<L>, deliver: (listener: L) => void): void {
    const pending = { listeners: [...listeners], next: 0, current: listeners, deliver } as Pending;
    if (pending.listeners.length === 0) return;
    this.queue.push(pending);
    if (!this.scheduled) {
      this.scheduled = true;
      // The first slice runs now: a change with few listeners is delivered without a macrotask's delay.
      this.run();
    }
  }

  /** Drops every change not yet handed out (the watcher is closing). */
  clear(): void {
    this.queue.length = 0;
  }

  private run(): void {
    let budget = this.slice;
    while (budget > 0 && this.queue.length > 0) {
      const pending = this.queue[0]!;
      while (budget > 0 && pending.next < pending.listeners.length) {
        const listener = pending.listeners[pending.next++];
        if (!pending.current.has(listener)) continue;
        budget -= 1;
        try {
          pending.deliver(listener);
        } catch {
          // One subscriber's failure must not starve the others.
        }
      }
      if (pending.next === pending.listeners.length) this.queue.shift();
    }
    if (this.queue.length === 0) {
      this.scheduled = false;
      return;
    }
    setImmediate(() => this.run());
  }
}

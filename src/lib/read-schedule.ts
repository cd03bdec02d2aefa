// When one request's DataLoader batches go out. DataLoader's own schedule sends a batch on the next
// tick, so keys that different levels of a query ask for (a knowledge base named by the model config,
// and another named by a conversation's turn) go out as separate commands of the same collection.
// Here a batch waits until none of the request's reads is in flight any more and the resolvers they
// fed have run (a macrotask later): whatever those resolvers asked for joins the same batch.
// Batches wait by stage too: a later stage (files) goes out only once no batch of an earlier stage
// (knowledge bases, whose file refs name files) waits or runs, so its keys gather in one batch.
//
// A tracked read must be a store call that awaits no DataLoader, or it would wait for itself.

interface WaitingBatch {
  stage: number;
  dispatch: () => void;
}

export class ReadSchedule {
  private inFlight = 0;
  private waiting: WaitingBatch[] = [];
  private flushQueued = false;

  /** Runs `read`, counted as in flight (holding back the waiting batches) until it settles. */
  track<T>(read: () => Promise<T>): Promise<T> {
    this.inFlight++;
    let pending: Promise<T>;
    try {
      pending = read();
    } catch (error) {
      pending = Promise.reject(error);
    }
    return pending.finally(() => {
      this.inFlight--;
      this.queueFlush();
    });
  }

  /** A DataLoader `batchScheduleFn` for batches of `stage` (lower stages go out first). */
  batchesOf(stage: number): (dispatch: () => void) => void {
    return (dispatch) => {
      this.waiting.push({ stage, dispatch });
      this.queueFlush();
    };
  }

  /**
   * Resolves when a batch of `stage` would go out: for a read that is not a DataLoader batch but
   * must follow the earlier stages (and may answer from what they read).
   */
  turn(stage: number): Promise<void> {
    return new Promise((resolve) => this.batchesOf(stage)(resolve));
  }

  private queueFlush(): void {
    if (this.flushQueued || this.waiting.length === 0) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      // The read that settles last queues the next flush.
      if (this.inFlight > 0 || this.waiting.length === 0) return;
      const stage = Math.min(...this.waiting.map((batch) => batch.stage));
      const due = this.waiting.filter((batch) => batch.stage === stage);
      this.waiting = this.waiting.filter((batch) => batch.stage !== stage);
      for (const batch of due) batch.dispatch();
      // Batches answered without a read leave nothing in flight to queue the next flush.
      this.queueFlush();
    });
  }
}

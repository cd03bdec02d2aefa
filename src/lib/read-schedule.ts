// When a request's DataLoader batches go out: once none of its tracked reads is in flight, and by stage,
// so keys asked for at different levels of a query share one command (docs/performance.md, "The profile's reads").

interface WaitingBatch {
  stage: number;
  dispatch: () => void;
}

export class ReadSchedule {
  private inFlight = 0;
  private waiting: WaitingBatch[] = [];
  private flushQueued = false;

  /**
   * Runs `read`, counted as in flight (holding back the waiting batches) until it settles. `read` must
   * await no DataLoader, or it would wait for itself.
   */
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

// A push-based async iterator for subscriptions whose return() ends it at once (a plain async
// generator's waits behind its pending await, so a quiet stream would keep its listener). Layers over a
// stream are `map`s and `deliverTo` hands events to the transport: why, measured, in
// docs/performance.md, "Live progress".

type Waiter<T> = { resolve(result: IteratorResult<T>): void; reject(error: unknown): void };

/** What a `map` transform returns for an event that its channel leaves out. */
export const SKIP: unique symbol = Symbol("EventChannel.SKIP");
type Mapped<U> = U | typeof SKIP;

// A function of the module, not a closure per `map`: a channel lives as long as its subscriber.
function pushUnlessSkipped<U>(channel: EventChannel<U>, output: Mapped<U>): void {
  if (output !== SKIP) channel.push(output);
}

/** A same-type layer of `replaceEach`: its event replacement and its failure replacement. */
interface Replacement<T> {
  replace(value: T): T;
  onError(error: unknown): unknown;
}

/** Where a consumed channel's events go: on to the channel `map` made, or to `deliverTo`'s handler. */
interface Forward<T> {
  push(value: T): void;
  end(): void;
  fail(error: unknown): void;
}

export class EventChannel<T> implements AsyncIterableIterator<T> {
  private readonly queue: T[] = [];
  private readonly waiting: Waiter<T>[] = [];
  private ended = false;
  /** Given by `fail`: the next `next()` rejects with it, once. */
  private failure: { error: unknown } | null = null;
  private readonly cleanups: ((error?: unknown) => void)[] = [];
  private forward: Forward<T> | null = null;
  /** `replaceEach`'s layers, in the order they were added: applied to each event as it is pushed. */
  private replacements: Replacement<T>[] | null = null;

  /**
   * `source` as a channel: itself when it is one (the fast path: nothing added per event), else a
   * channel its events are pumped into. Ending the channel ends it at once and returns the source's
   * iterator, which an async generator honours only once its pending step settles.
   */
  static from<T>(source: AsyncIterable<T>): EventChannel<T> {
    if (source instanceof EventChannel) return source as EventChannel<T>;
    const channel = new EventChannel<T>();
    const iterator = source[Symbol.asyncIterator]();
    channel.onEnd(() => void iterator.return?.().catch(() => undefined));
    void (async () => {
      try {
        for (let step = await iterator.next(); !step.done && !channel.ended; step = await iterator.next())
          channel.push(step.value);
        channel.end();
      } catch (error) {
        channel.fail(error);
      }
    })();
    return channel;
  }

  /** Queues an event; ignored once the channel has ended. */
  push(value: T): void {
    if (this.ended) return;
    if (this.replacements) {
      const replaced = this.replaced(value, 0);
      if (replaced === SKIP) return;
      value = replaced;
    }
    if (this.forward) return this.forward.push(value);
    const next = this.waiting.shift();
    if (next) next.resolve({ value, done: false });
    else this.queue.push(value);
  }

  /** No more events: queued ones are still delivered, then the iterator completes. */
  end(): void {
    this.finish(undefined);
  }

  /** Ends the channel with an error: a pending `next()`, else the next one, rejects with it; queued events are dropped. */
  fail(error: unknown): void {
    this.failAfter(0, error);
  }

  /**
   * Fails the channel with `error` as the layers of `replaceEach` from `first` on replace it. Cleanups
   * get it before any of them, as a channel under a `map` does; consumers get it after all of them.
   */
  private failAfter(first: number, error: unknown): void {
    if (this.ended) return;
    let replaced = error;
    for (const layer of this.replacements?.slice(first) ?? []) replaced = layer.onError(replaced);
    this.queue.length = 0;
    const waiting = this.waiting.splice(0);
    if (!this.forward && waiting.length === 0) this.failure = { error: replaced };
    this.finish(error);
    this.forward?.fail(replaced);
    for (const next of waiting) next.reject(replaced);
  }

  /**
   * What `map((event) => replace(event), onError)` would give, on this same channel and without a
   * channel per layer: each layer is objects a delivery walks through, per subscriber
   * (docs/performance.md, "Live progress"). `replace` runs when an event is pushed, after the layers
   * added before it (and on events already queued); one that throws fails the channel with its error,
   * as a map's transform does. A failure of the channel reaches its consumer through `onError`.
   */
  replaceEach(replace: (value: T) => T, onError: (error: unknown) => unknown = (error) => error): void {
    const layer: Replacement<T> = { replace, onError };
    const index = (this.replacements ??= []).push(layer) - 1;
    for (let i = 0; i < this.queue.length; i++) {
      const replaced = this.replaced(this.queue[i]!, index);
      if (replaced === SKIP) return;
      this.queue[i] = replaced;
    }
    if (this.failure) this.failure = { error: onError(this.failure.error) };
  }

  /** `value` through the replacements from `first` on, or SKIP when one threw and failed the channel. */
  private replaced(value: T, first: number): T | typeof SKIP {
    const layers = this.replacements!;
    for (let i = first; i < layers.length; i++) {
      try {
        value = layers[i]!.replace(value);
      } catch (error) {
        this.failAfter(i + 1, error);
        return SKIP;
      }
    }
    return value;
  }

  /** Runs when the channel ends, from either side; `error` is the one it failed with, if it did. */
  onEnd(cleanup: (error?: unknown) => void): void {
    if (this.ended) cleanup();
    else this.cleanups.push(cleanup);
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /**
   * A channel of `transform(event)` for each event of this one, computed when the event is pushed and
   * delivered in order (an async result holds later events back until it settles); SKIP leaves the
   * event out. This channel's failure reaches the new one through `onError`, a transform that throws
   * fails it, and ending it (its consumer's `return()`) ends this one, whose only consumer it becomes.
   */
  map<U>(
    transform: (value: T) => Mapped<U> | Promise<Mapped<U>>,
    onError: (error: unknown) => unknown = (error) => error,
  ): EventChannel<U> {
    const mapped = new EventChannel<U>();
    // The deliveries still waiting behind an async result, in order; null when there is none.
    let backlog: Promise<void> | null = null;
    const inOrder = (step: () => void | Promise<void>) => {
      const queued = backlog ? backlog.then(step) : step();
      if (!(queued instanceof Promise)) return;
      backlog = queued;
      void queued.then(() => {
        if (backlog === queued) backlog = null;
      });
    };
    const abort = (error: unknown) => {
      mapped.fail(error);
      void this.return();
    };
    const deliver = (value: T) => {
      if (mapped.ended) return;
      let result: Mapped<U> | Promise<Mapped<U>>;
      try {
        result = transform(value);
      } catch (error) {
        return inOrder(() => abort(error));
      }
      if (result instanceof Promise) inOrder(() => result.then((output) => pushUnlessSkipped(mapped, output), abort));
      else if (backlog) inOrder(() => pushUnlessSkipped(mapped, result));
      else pushUnlessSkipped(mapped, result); // the common case, with nothing to wait behind: no closure per event and layer
    };
    this.consume({
      push: deliver,
      end: () => inOrder(() => mapped.end()),
      fail: (error) => inOrder(() => mapped.fail(onError(error))),
    });
    mapped.onEnd(() => void this.return());
    return mapped;
  }

  /**
   * Hands every event to `onEvent` when it is pushed, in order, instead of queueing it for `next()`:
   * the consumer holds one promise for the channel's whole life rather than one per event. Resolves
   * when the channel ends, rejects with its failure. Like `map`, it takes the channel's only consumer.
   */
  deliverTo(onEvent: (value: T) => void): Promise<void> {
    let consumer!: Forward<T>;
    const delivered = new Promise<void>(
      (resolve, reject) => (consumer = { push: onEvent, end: resolve, fail: reject }),
    );
    this.consume(consumer);
    return delivered;
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
    void this.return();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Makes `consumer` this channel's only one and hands it, first, whatever the channel already holds. */
  private consume(consumer: Forward<T>): void {
    if (this.forward) throw new Error("an EventChannel has one consumer: it is already mapped or delivered");
    this.forward = consumer;
    for (const value of this.queue.splice(0)) consumer.push(value);
    if (this.failure) {
      const { error } = this.failure;
      this.failure = null;
      consumer.fail(error);
    } else if (this.ended) consumer.end();
  }

  private finish(error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    if (error === undefined) this.forward?.end();
    for (const cleanup of this.cleanups.splice(0)) {
      try {
        cleanup(error);
      } catch {
        // Cleanups are independent; one failing must not keep the others from running.
      }
    }
    for (const next of this.waiting.splice(0)) next.resolve({ value: undefined, done: true });
  }
}

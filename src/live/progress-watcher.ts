// Watches LAYRA's progress keys (docs/architecture.md, "Live progress"): one keyspace subscription
// per process, or one shared poller where CONFIG is forbidden; a change costs one read per key, fanned
// out to every listener of that key. The Redis calls are the store's (src/stores/progress-keys.ts).
import type { Config } from "../config.js";
import type { KeyRead, KeyspaceSubscription, ProgressKeys, StreamEntry } from "../stores/progress-keys.js";
import { SlicedFanOut } from "./fan-out.js";

export type WatchMode = "notifications" | "poll";

/** One read of a hash. `fields` is null when the key does not exist. */
export interface HashState {
  key: string;
  fields: Record<string, string> | null;
  /** Why an existing key went away (only set on the transition to missing). */
  gone: "deleted" | "expired" | null;
  /** Re-sent after Redis came back, even when unchanged, so the subscriber knows it is current again. */
  resumed: boolean;
  observedAt: Date;
}

export type HashListener = (state: HashState) => void;
export type StreamListener = (entries: StreamEntry[]) => void;

export interface WatcherCounts {
  /** null until the first watch decides it. */
  mode: WatchMode | null;
  keys: number;
  listeners: number;
  pollerActive: boolean;
}

interface HashWatch {
  kind: "hash";
  key: string;
  listeners: Set<HashListener>;
  last: HashState | null;
  signature: string | null;
  /** The last keyspace event seen for the key, to tell expiry from deletion. */
  lastEvent: string | null;
  /** Milliseconds to live at the last poll, to tell expiry from deletion without notifications. */
  lastTtlMs: number;
  forceEmit: boolean;
}

interface StreamWatch {
  kind: "stream";
  key: string;
  listeners: Set<StreamListener>;
  /** Entries up to this id were fanned out; null = none yet (the first read takes the whole stream). */
  lastId: string | null;
}

type Watch = HashWatch | StreamWatch;

// Events that cannot change a hash's fields or a stream's entries: no read needed.
const IGNORED_EVENTS = new Set(["expire", "persist"]);
const RETRY_MS = 250;
/**
 * Listener calls per macrotask when a change fans out: a few milliseconds of deliveries, a size
 * measured in docs/performance.md, "Live progress".
 */
const FAN_OUT_SLICE = 64;

export class ProgressWatcher {
  private readonly watches = new Map<string, Watch>();
  private readonly pending = new Set<Watch>();
  private readonly reading = new Set<Watch>();
  private readonly fanOut = new SlicedFanOut(FAN_OUT_SLICE);
  private flushScheduled = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private mode: WatchMode | null = null;
  private starting: Promise<void> | null = null;
  private subscription: KeyspaceSubscription | null = null;
  private poller: NodeJS.Timeout | null = null;
  private pollFailed = false;
  /** Set when the listener connection drops: the next successful resume re-sends every snapshot. */
  private listenerLost = false;
  private resuming = false;
  private closed = false;

  constructor(
    private readonly config: Config,
    private readonly keys: ProgressKeys,
  ) {}

  /** Calls `listener` with the hash's current state (cached if already watched), then on every change. */
  watchHash(key: string, listener: HashListener): () => void {
    const watch = this.watch(key, "hash") as HashWatch;
    watch.listeners.add(listener);
    const cached = watch.last;
    if (cached)
      queueMicrotask(() => watch.listeners.has(listener) && listener({ ...cached, gone: null, resumed: false }));
    else this.schedule(watch);
    return () => this.unwatch(watch, listener);
  }

  /** Calls `listener` with the entries appended after it registered (read `readStream` for the history). */
  watchStream(key: string, listener: StreamListener): () => void {
    const watch = this.watch(key, "stream") as StreamWatch;
    watch.listeners.add(listener);
    return () => this.unwatch(watch, listener);
  }

  /** The whole stream, for a subscriber's history; entries it also gets from `watchStream` share ids. */
  readStream(key: string): Promise<StreamEntry[]> {
    return this.keys.readStream(key);
  }

  counts(): WatcherCounts {
    let listeners = 0;
    for (const watch of this.watches.values()) listeners += watch.listeners.size;
    return { mode: this.mode, keys: this.watches.size, listeners, pollerActive: this.poller !== null };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopPoller();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.watches.clear();
    this.pending.clear();
    this.fanOut.clear();
    await this.subscription?.close();
  }

  private watch(key: string, kind: Watch["kind"]): Watch {
    let watch = this.watches.get(key);
    if (watch && watch.kind !== kind) throw new Error(`${key} is already watched as a ${watch.kind}`);
    if (!watch) {
      watch =
        kind === "hash"
          ? {
              kind,
              key,
              listeners: new Set(),
              last: null,
              signature: null,
              lastEvent: null,
              lastTtlMs: -1,
              forceEmit: false,
            }
          : { kind, key, listeners: new Set(), lastId: null };
      this.watches.set(key, watch);
      this.start();
    }
    return watch;
  }

  private unwatch(watch: Watch, listener: HashListener | StreamListener): void {
    (watch.listeners as Set<unknown>).delete(listener);
    if (watch.listeners.size > 0 || this.watches.get(watch.key) !== watch) return;
    this.watches.delete(watch.key);
    this.pending.delete(watch);
    if (this.watches.size === 0) this.stopPoller();
  }

  // --- mode: notifications, or one poller where CONFIG is forbidden -------------------------------

  private start(): void {
    if (this.mode === "poll") return this.startPoller();
    if (this.mode || this.starting) return;
    this.starting = this.decideMode().finally(() => (this.starting = null));
  }

  private async decideMode(): Promise<void> {
    const wanted = this.config.progress.mode;
    if (wanted === "poll") {
      this.mode = "poll";
      this.startPoller();
      return;
    }
    // An unreachable Redis is retried when the subscriber connects (resume).
    const notifications = await this.keys.ensureKeyspaceNotifications().catch(() => "unreachable" as const);
    if (notifications === "forbidden" && wanted === "auto") {
      this.mode = "poll";
      this.startPoller();
      this.flushAllSoon();
      return;
    }
    // Listen otherwise, also where the configuration forces notifications on and CONFIG is forbidden.
    // Reads wait (mode still null) until the pattern subscription is active, so no change falls between.
    await this.listen();
    this.mode = "notifications";
  }

  private async listen(): Promise<void> {
    const subscription = this.keys.subscribeKeyspace(["task:*", "workflow:*"], {
      onEvent: (key, event) => this.onKeyspaceEvent(key, event),
      // Every (re)connection: Redis may have restarted and lost both the subscription and the CONFIG SET.
      onReady: () => void this.resume(),
      onClose: () => (this.listenerLost = true),
    });
    this.subscription = subscription;
    await subscription.subscribe().catch(() => undefined);
    // Anything written before the subscription was active is picked up by this first read.
    this.flushAllSoon();
  }

  /** After Redis came back: listen again, re-enable notifications, then re-read and re-send every key. */
  private async resume(): Promise<void> {
    if (this.closed || !this.subscription || this.resuming) return;
    this.resuming = true;
    try {
      await this.subscription.subscribe();
      await this.keys.ensureKeyspaceNotifications(); // "forbidden" is no outage: listen all the same
    } catch {
      if (!this.closed) setTimeout(() => void this.resume(), RETRY_MS).unref();
      return;
    } finally {
      this.resuming = false;
    }
    if (this.listenerLost) {
      this.listenerLost = false;
      for (const watch of this.watches.values()) if (watch.kind === "hash" && watch.last) watch.forceEmit = true;
    }
    this.flushAllSoon();
  }

  private onKeyspaceEvent(key: string, event: string): void {
    const watch = this.watches.get(key);
    if (!watch || IGNORED_EVENTS.has(event)) return;
    if (watch.kind === "hash") watch.lastEvent = event;
    this.schedule(watch);
  }

  private startPoller(): void {
    if (this.poller || this.closed || this.watches.size === 0) return;
    this.poller = setInterval(() => this.flushAllSoon(), this.config.progress.pollIntervalMs);
  }

  private stopPoller(): void {
    if (this.poller) clearInterval(this.poller);
    this.poller = null;
  }

  // --- reading: one pipeline per batch of changed keys -----------------------------------------

  private flushAllSoon(): void {
    for (const watch of this.watches.values()) this.schedule(watch);
  }

  private schedule(watch: Watch): void {
    this.pending.add(watch);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate lets every notification already received join this batch (coalescing bursts).
    setImmediate(() => {
      this.flushScheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.closed || this.mode === null) return; // decideMode() flushes once the mode is known
    // A key already being read is read again after that read completes, not concurrently.
    const batch = [...this.pending].filter((watch) => !this.reading.has(watch));
    if (batch.length === 0) return;
    for (const watch of batch) {
      this.pending.delete(watch);
      this.reading.add(watch);
    }
    const polling = this.mode === "poll";
    const reads = batch.map((watch): KeyRead =>
      watch.kind === "hash"
        ? { kind: "hash", key: watch.key, withTtl: polling }
        : { kind: "stream", key: watch.key, afterId: watch.lastId },
    );
    const states = await this.keys.readBatch(reads).catch(() => null);
    for (const watch of batch) this.reading.delete(watch);
    if (!states) {
      // Redis is unreachable: keep the keys pending; in poll mode the next good read re-sends them all.
      if (polling) this.pollFailed = true;
      for (const watch of batch) if (this.watches.get(watch.key) === watch) this.pending.add(watch);
      this.retrySoon();
      return;
    }
    const resumed = polling && this.pollFailed;
    this.pollFailed = false;
    const observedAt = new Date();
    batch.forEach((watch, i) => {
      const state = states[i]!;
      if (watch.kind === "hash" && state.kind === "hash")
        this.applyHash(watch, state.fields, state.ttlMs, observedAt, resumed || watch.forceEmit);
      else if (watch.kind === "stream" && state.kind === "stream") this.applyStream(watch, state.entries);
    });
    if (this.pending.size > 0) this.schedule(this.pending.values().next().value!);
  }

  private retrySoon(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      const first = this.pending.values().next().value;
      if (first) this.schedule(first);
    }, RETRY_MS);
  }

  private applyHash(
    watch: HashWatch,
    fields: Record<string, string> | null,
    ttlMs: number,
    observedAt: Date,
    force: boolean,
  ): void {
    const signature = fields
      ? JSON.stringify(Object.entries(fields).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : "";
    const existed = watch.signature !== null && watch.signature !== "";
    const changed = signature !== watch.signature;
    const lastEvent = watch.lastEvent;
    const lastTtlMs = watch.lastTtlMs;
    watch.forceEmit = false;
    watch.lastEvent = null;
    watch.lastTtlMs = ttlMs;
    if (!changed && !(force && fields)) return;
    let gone: HashState["gone"] = null;
    if (!fields && existed) {
      // Without notifications, a key that had about a poll interval (at least a second) to live has expired.
      const expiredByTtl = lastTtlMs >= 0 && lastTtlMs <= Math.max(this.config.progress.pollIntervalMs * 2, 1_000);
      gone = lastEvent === "expired" || (this.mode === "poll" && expiredByTtl) ? "expired" : "deleted";
    }
    watch.signature = signature;
    const state: HashState = { key: watch.key, fields, gone, resumed: force, observedAt };
    watch.last = state;
    this.fanOut.add(watch.listeners, (listener) => listener(state));
  }

  private applyStream(watch: StreamWatch, entries: StreamEntry[]): void {
    if (entries.length === 0) return;
    watch.lastId = entries[entries.length - 1]!.id;
    this.fanOut.add(watch.listeners, (listener) => listener(entries));
  }
}

// Ends live streams when their credential stops being valid: a subscription authenticates once, when
// it starts. Streams of one credential share one check (docs/performance.md, "Live progress").
import { EventChannel } from "./event-channel.js";

interface Credential {
  key: string;
  /** One callback per open stream, called once when the credential is found revoked. */
  streams: Set<() => void>;
  lastChecked: number;
  /** The check under way, shared by every stream that needs it (single-flight). */
  checking: Promise<boolean> | null;
  timer: NodeJS.Timeout | null;
  revoked: boolean;
}

/** What a stream holds: whether its credential is still valid, and a way to stop watching it. */
export interface RevocationWatch {
  /** False once revoked; a shared check first when the last one is older than the interval. */
  stillValid(): boolean | Promise<boolean>;
  close(): void;
}

/**
 * One validity check per credential per `everyMs`, shared by all the process's streams of it
 * (docs/performance.md, "Live progress"). A check that fails (the store is down) keeps the streams open:
 * they were valid.
 */
export class RevocationChecks {
  private readonly credentials = new Map<string, Credential>();

  constructor(
    private readonly isValid: (key: string) => Promise<boolean>,
    private readonly everyMs: number,
  ) {}

  /** Calls `onRevoked` once when `key` is found revoked, unless the watch was closed first. */
  watch(key: string, onRevoked: () => void): RevocationWatch {
    let credential = this.credentials.get(key);
    if (!credential) {
      // The stream has just been authenticated: that counts as a check.
      credential = { key, streams: new Set(), lastChecked: Date.now(), checking: null, timer: null, revoked: false };
      this.credentials.set(key, credential);
      this.scheduleCheck(credential);
    }
    const entry = credential;
    // A distinct function per stream, so two streams passing the same callback stay two members.
    const stream = () => onRevoked();
    entry.streams.add(stream);
    return {
      stillValid: () => {
        if (entry.revoked) return false;
        return Date.now() - entry.lastChecked >= this.everyMs ? this.check(entry) : true;
      },
      close: () => {
        entry.streams.delete(stream);
        if (entry.streams.size === 0) this.forget(entry);
      },
    };
  }

  /** This process revoked `key` itself: its streams end now rather than at the next check. */
  revoked(key: string): void {
    const credential = this.credentials.get(key);
    if (credential) this.revoke(credential);
  }

  /** Credentials with open streams (each costs one check per interval). */
  get size(): number {
    return this.credentials.size;
  }

  close(): void {
    for (const credential of [...this.credentials.values()]) this.forget(credential);
  }

  private scheduleCheck(credential: Credential): void {
    if (credential.timer) clearTimeout(credential.timer);
    const dueIn = Math.max(0, credential.lastChecked + this.everyMs - Date.now());
    credential.timer = setTimeout(() => void this.check(credential), dueIn);
    credential.timer.unref();
  }

  private check(credential: Credential): Promise<boolean> {
    if (credential.checking) return credential.checking;
    credential.lastChecked = Date.now();
    if (credential.timer) clearTimeout(credential.timer);
    credential.timer = null;
    credential.checking = this.isValid(credential.key)
      .catch(() => true)
      .then((valid) => {
        credential.checking = null;
        if (!valid) this.revoke(credential);
        else if (this.credentials.get(credential.key) === credential) this.scheduleCheck(credential);
        return valid && !credential.revoked;
      });
    return credential.checking;
  }

  private revoke(credential: Credential): void {
    if (credential.revoked) return;
    credential.revoked = true;
    const streams = [...credential.streams];
    this.forget(credential);
    for (const onRevoked of streams) {
      try {
        onRevoked();
      } catch {
        // One stream's failure must not keep the others open.
      }
    }
  }

  private forget(credential: Credential): void {
    if (credential.timer) clearTimeout(credential.timer);
    credential.timer = null;
    credential.streams.clear();
    if (this.credentials.get(credential.key) === credential) this.credentials.delete(credential.key);
  }
}

/**
 * `stream` until `key` is revoked: then it fails with `revokedError()`, at once when this process
 * learns it (the watch fails the channel), else before the next event once the shared check says so.
 * A map of the stream's channel (src/live/event-channel.ts): no iterator layer of its own.
 */
export function untilRevoked<T>(
  stream: AsyncIterable<T>,
  checks: RevocationChecks,
  key: string,
  revokedError: () => Error,
): EventChannel<T> {
  const channel = EventChannel.from(stream);
  const watch = checks.watch(key, () => channel.fail(revokedError()));
  channel.onEnd(() => watch.close());
  const revoked = (): never => {
    throw revokedError();
  };
  return channel.map((event) => {
    const valid = watch.stillValid();
    if (valid === true) return event;
    if (valid === false) return revoked();
    return valid.then((stillValid) => (stillValid ? event : revoked()));
  });
}

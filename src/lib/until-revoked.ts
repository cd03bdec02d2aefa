// Ends a live stream when its credential stops being valid. A subscription authenticates once,
// when it starts; without this a stream opened before `logout` would keep delivering until it
// finished. The check runs every `everyMs` and before an event is delivered when the last check
// is older than that, so a revoke on any replica ends the stream within about `everyMs`, and a
// busy stream costs at most one check per `everyMs`. A check that fails (the store is down) keeps
// the stream open: it was valid, and the store's own outage is reported elsewhere.

export function untilRevoked<T>(
  source: AsyncIterator<T>,
  isValid: () => Promise<boolean>,
  everyMs: number,
  revokedError: () => Error,
): AsyncIterableIterator<T> {
  let lastChecked = Date.now();
  let stopped = false;
  let revoke!: (error: Error) => void;
  const revoked = new Promise<never>((_resolve, reject) => (revoke = reject));
  revoked.catch(() => undefined);
  const stillValid = async () => {
    lastChecked = Date.now();
    return isValid().catch(() => true);
  };
  const timer = setInterval(() => {
    void stillValid().then((valid) => {
      if (!valid) revoke(revokedError());
    });
  }, everyMs);
  timer.unref();
  const stop = () => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    void source.return?.();
  };
  return {
    async next() {
      try {
        const result = await Promise.race([source.next(), revoked]);
        if (result.done) stop();
        else if (Date.now() - lastChecked >= everyMs && !(await stillValid())) throw revokedError();
        return result;
      } catch (error) {
        stop();
        throw error;
      }
    },
    async return() {
      stop();
      return { value: undefined, done: true };
    },
    async throw(error?: unknown) {
      stop();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

import { UpstreamUnavailable } from "../errors.js";

/** Rejects with UpstreamUnavailable when `work` takes longer than `ms`; the store's own retry logic keeps running. */
export async function withTimeout<T>(store: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new UpstreamUnavailable(store, `no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

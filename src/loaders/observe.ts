import { currentObservation } from "../observability/scope.js";

/** A DataLoader batch function that reports each batch's key count (/metrics: dataloader_batch_size{loader}). */
export function observedBatch<K, V>(loader: string, batch: (keys: readonly K[]) => PromiseLike<ArrayLike<V | Error>>) {
  return (keys: readonly K[]): PromiseLike<ArrayLike<V | Error>> => {
    currentObservation()?.metrics.loaderBatchSize.observe({ loader }, keys.length);
    return batch(keys);
  };
}

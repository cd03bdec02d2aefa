// observedBatch(name, batchFn): a DataLoader batch function that reports how many keys each batch
// carried (/metrics: dataloader_batch_size{loader}). Use it when creating the per-request loaders:
//
//     new DataLoader(observedBatch("fileById", (ids) => ...))
import { currentObservation } from "../observability/scope.js";

export function observedBatch<K, V>(loader: string, batch: (keys: readonly K[]) => PromiseLike<ArrayLike<V | Error>>) {
  return (keys: readonly K[]): PromiseLike<ArrayLike<V | Error>> => {
    currentObservation()?.metrics.loaderBatchSize.observe({ loader }, keys.length);
    return batch(keys);
  };
}

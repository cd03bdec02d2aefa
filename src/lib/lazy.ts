// Objects whose properties are built on first use. Every operation and every subscription event gets
// fresh DataLoaders; most use none or one of them, so building all of them each time was garbage
// (a progress event fanned out to thousands of subscribers made thousands of unused loaders).

type Factories<A, T> = { [K in keyof T]: (arg: A) => T[K] };

/** A maker of objects with T's properties, each built from `arg` by its factory when first read. */
export function lazyObjects<A, T extends object>(factories: Factories<A, T>): (arg: A) => T {
  // One prototype of getters for all instances: making an instance allocates two small objects.
  const prototype = {};
  for (const key of Object.keys(factories) as (keyof T & string)[]) {
    Object.defineProperty(prototype, key, {
      enumerable: true,
      get(this: { arg: A; built: Partial<T> }) {
        return (this.built[key] ??= factories[key](this.arg));
      },
    });
  }
  return (arg) => Object.assign(Object.create(prototype) as T, { arg, built: {} });
}

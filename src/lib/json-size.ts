// The size of a GraphQL result as JSON, measured without building the string and given up as soon
// as it passes `limit`: checking a response against its ceiling costs at most `limit` bytes of
// walking, not a second serialisation of a huge result. Escapes inside strings are not counted,
// so the figure may fall short of the real size by those few bytes.

/** UTF-8 bytes of JSON.stringify(value), or some number above `limit` once it is passed. */
export function jsonByteLength(value: unknown, limit: number): number {
  let total = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0 && total <= limit) {
    const item = stack.pop();
    if (item === null || item === undefined) total += 4;
    else if (typeof item === "string") total += Buffer.byteLength(item, "utf8") + 2;
    else if (typeof item === "number" || typeof item === "boolean" || typeof item === "bigint")
      total += String(item).length;
    else if (item instanceof Date) total += 26;
    else if (Array.isArray(item)) {
      total += 2 + Math.max(0, item.length - 1);
      for (const element of item) stack.push(element);
    } else if (typeof item === "object") {
      const toJSON = (item as { toJSON?: () => unknown }).toJSON;
      if (typeof toJSON === "function") {
        stack.push(toJSON.call(item));
        continue;
      }
      const entries = Object.entries(item);
      total += 2 + Math.max(0, entries.length - 1);
      for (const [key, element] of entries) {
        total += Buffer.byteLength(key, "utf8") + 3;
        stack.push(element);
      }
    }
  }
  return total;
}

// Argument checks shared by the mutations. GraphQL already guarantees strings are strings, so a
// client value never becomes a Mongo operator in a filter; these checks add the shapes LAYRA relies on.
import { BadUserInput } from "../errors.js";
import { isOwnUserId } from "./layra-ids.js";

const MAX_NAME_LENGTH = 200;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** A display name: trimmed, non-empty, at most `max` characters, no control characters (NUL included). */
export function requireName(argument: string, value: string, max = MAX_NAME_LENGTH): string {
  const name = value.trim();
  if (name === "") throw new BadUserInput(argument, "must not be empty");
  if (CONTROL.test(name)) throw new BadUserInput(argument, "must not contain control characters");
  if (name.length > max) throw new BadUserInput(argument, `must be at most ${max} characters`);
  return name;
}

/** A client-chosen id in LAYRA's `{username}_{uuid4}` form whose parsed owner is exactly the caller. */
export function requireOwnLayraId(argument: string, value: string, username: string): string {
  if (!isOwnUserId(value, username))
    throw new BadUserInput(argument, `must be "${username}_" followed by a lowercase uuid4`);
  return value;
}

/**
 * A JSON value stored as a document: no key may be empty, start with `$` (an operator) or contain
 * `.` (a path), at any depth. MongoDB 7 stores dotted keys but FerretDB refuses them, and the
 * gateway writes only what both accept (docs/architecture.md, "Portable MongoDB subset").
 */
function requireStorableJson(argument: string, value: unknown, depth = 0): void {
  if (depth > 64) throw new BadUserInput(argument, "is nested too deeply");
  if (Array.isArray(value)) {
    for (const item of value) requireStorableJson(argument, item, depth + 1);
  } else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      if (key === "" || key.startsWith("$") || key.includes(".") || CONTROL.test(key)) {
        throw new BadUserInput(
          argument,
          `has a key ${JSON.stringify(key)}: keys must be non-empty, not start with "$" and not contain "." or control characters`,
        );
      }
      requireStorableJson(argument, item, depth + 1);
    }
  }
}

/** A JSON input value: finite numbers only (`1e400` parses to Infinity), nested at most 64 deep. */
export function requireFiniteJson(argument: string, value: unknown, depth = 0): void {
  if (depth > 64) throw new BadUserInput(argument, "is nested too deeply");
  if (typeof value === "number" && !Number.isFinite(value))
    throw new BadUserInput(argument, "numbers must be finite (JSON has no Infinity or NaN)");
  if (typeof value === "object" && value !== null)
    for (const item of Object.values(value)) requireFiniteJson(argument, item, depth + 1);
}

export function requireObject(argument: string, value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new BadUserInput(argument, "must be a JSON object");
  requireStorableJson(argument, value);
  return value as Record<string, unknown>;
}

export function requireObjectList(argument: string, value: unknown): Record<string, unknown>[] {
  if (!Array.isArray(value) || value.some((item) => item === null || typeof item !== "object" || Array.isArray(item))) {
    throw new BadUserInput(argument, "must be a JSON array of objects");
  }
  requireStorableJson(argument, value);
  return value as Record<string, unknown>[];
}

/** -1 (LAYRA's "provider default") or a number inside [min, max]. */
export function requireDefaultOrRange(argument: string, value: number, min: number, max: number): number {
  if (value === -1 || (Number.isFinite(value) && value >= min && value <= max)) return value;
  throw new BadUserInput(argument, `must be -1 (default) or between ${min} and ${max}`);
}

/** An input list of at most `max` items (every list argument has a bound). */
export function requireListLength<T>(argument: string, list: readonly T[], max: number): readonly T[] {
  if (list.length > max) throw new BadUserInput(argument, `must have at most ${max} items, got ${list.length}`);
  return list;
}

/** Distinct ids, at least one and at most `max`. */
export function requireIdList(argument: string, ids: readonly string[], max = 500): string[] {
  const distinct = [...new Set(ids)];
  if (distinct.length === 0) throw new BadUserInput(argument, "must name at least one id");
  if (distinct.length > max) throw new BadUserInput(argument, `must name at most ${max} ids`);
  return distinct;
}

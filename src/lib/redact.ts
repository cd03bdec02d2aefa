// Redaction by field name, in one place: the logger (src/observability/logger.ts) and the error
// policy (src/plugins/errors.ts) pass everything they emit through these, so a secret that reaches
// an error message or a log object (a document's `api_key`, a bearer token, a store password in a
// URL) never leaves the process, whatever code put it there.

/** Field names whose values are secrets, wherever they occur (snake, camel or kebab case). */
const SECRET_NAME = /api[_-]?key|token|passw(or)?d|secret|authori[sz]ation|cookie|credential|access[_-]?key/i;

const REDACTED = "[redacted]";

const isSecretName = (name: string) => SECRET_NAME.test(name);

// `name: value`, `name=value`, `"name": "value"` (JSON and util.inspect output, query strings, headers).
const NAMED_VALUE = new RegExp(
  `(["']?[\\w-]*(?:${SECRET_NAME.source})[\\w-]*["']?\\s*[:=]\\s*)("(?:[^"\\\\]|\\\\.)*"|'(?:[^'\\\\]|\\\\.)*'|[^\\s,;&}\\]]+)`,
  "gi",
);
const BEARER = /\b(Bearer\s+)[\w.~+/=-]{16,}/gi;
/** Three base64url parts starting with a JSON header: a JWT, wherever it appears. */
const JWT = /\beyJ[\w-]*\.[\w-]+\.[\w-]*/g;
/** `scheme://user:password@host`: the password part. */
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]*@/gi;

/**
 * Something each pattern above needs (`://`, `bearer`, `eyJ`, a secret name): a text without any of
 * them has nothing to redact, and one scan for them is much cheaper than the four replacements.
 */
const MAY_HOLD_SECRET = new RegExp(`://|bearer|eyJ|${SECRET_NAME.source}`, "i");

/** A text with every recognisable secret replaced by `[redacted]`. */
export function redactText(text: string): string {
  if (!MAY_HOLD_SECRET.test(text)) return text;
  return text
    .replace(URL_PASSWORD, `$1${REDACTED}@`)
    .replace(BEARER, `$1${REDACTED}`)
    .replace(JWT, REDACTED)
    .replace(NAMED_VALUE, `$1${REDACTED}`);
}

/**
 * `value` with secret-named fields replaced and every string redacted (cycle-safe, depth-bounded):
 * a copy where something had to change, else a plain object or array itself (most log lines hold no
 * secret, and copying them was most of the cost).
 */
export function redactValue(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === "string") return redactText(value);
  if (value === null || typeof value !== "object") return value;
  if (depth > 16 || seen.has(value)) return "[…]";
  seen.add(value);
  if (value instanceof Error) {
    const error: Record<string, unknown> = { type: value.name, message: redactText(value.message) };
    if (value.stack) error.stack = redactText(value.stack);
    for (const [key, item] of Object.entries(value))
      error[key] = isSecretName(key) && typeof item === "string" ? REDACTED : redactValue(item, depth + 1, seen);
    return error;
  }
  if (value instanceof Date || Buffer.isBuffer(value)) return value;
  if (Array.isArray(value)) {
    const items = value.map((item) => redactValue(item, depth + 1, seen));
    return items.every((item, i) => item === value[i]) ? value : items;
  }
  const copy: Record<string, unknown> = {};
  let changed = false;
  for (const [key, item] of Object.entries(value)) {
    // Strings only: a count such as `total_token: 5` is no secret.
    const redacted = isSecretName(key) && typeof item === "string" ? REDACTED : redactValue(item, depth + 1, seen);
    copy[key] = redacted;
    if (redacted !== item) changed = true;
  }
  // Only a plain object goes out as it is: another kind may serialise differently (a toJSON) from the
  // fields checked here.
  const prototype = Object.getPrototypeOf(value) as unknown;
  return changed || (prototype !== Object.prototype && prototype !== null) ? copy : value;
}

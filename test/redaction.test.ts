// Secrets never leave the process: redaction by field name in the logger and in the error policy
// (src/lib/redact.ts), wherever the secret came from. No store is needed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { GraphQLError } from "graphql";
import { createLogger } from "../src/observability/logger.js";
import { maskResult } from "../src/plugins/errors.js";
import { redactText, redactValue } from "../src/lib/redact.js";

const KEY = "sk-live-4f9a0c2b7e1d";
const JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl";

test("texts and values: secret-named fields, bearer tokens, JWTs and URL passwords are redacted", () => {
  const inspected = `Expected value of type "ConversationModelSettings" but got: { model_name: "m", api_key: "${KEY}", top_K: 3 }.`;
  assert.equal(redactText(inspected).includes(KEY), false);
  assert.match(redactText(inspected), /model_name: "m", api_key: \[redacted\], top_K: 3/);
  for (const text of [
    `{"apiKey":"${KEY}"}`,
    `password=${KEY}&user=x`,
    `Authorization: Bearer ${JWT}`,
    `key token:${JWT} is large`,
    `redis://:${KEY}@10.0.0.5:6379/0`,
  ])
    assert.equal(redactText(text).includes(KEY) || redactText(text).includes(JWT), false, text);
  assert.equal(redactText("send a valid LAYRA bearer token"), "send a valid LAYRA bearer token");
  assert.deepEqual(redactValue({ models: [{ api_key: KEY, total_token: 5 }], Authorization: `Bearer ${JWT}` }), {
    models: [{ api_key: "[redacted]", total_token: 5 }],
    Authorization: "[redacted]",
  });
});

test("the logger redacts every object and message it writes, errors included", () => {
  const lines: string[] = [];
  const logger = createLogger({ logLevel: "info" }, { write: (line: string) => void lines.push(line) });
  logger.error({ err: new Error(`failed on { api_key: '${KEY}' }`), doc: { secret: KEY } }, `token ${JWT}`);
  logger.info({ url: `mongodb://admin:${KEY}@db:27017` }, "connecting");
  assert.equal(lines.length, 2);
  for (const line of lines) assert.equal(line.includes(KEY) || line.includes(JWT), false, line);
  assert.match(lines[0]!, /failed on/);
});

test("the error policy redacts every message a client receives", () => {
  const lines: string[] = [];
  const logger = createLogger({ logLevel: "info" }, { write: (line: string) => void lines.push(line) });
  const masked = maskResult(
    { data: null, errors: [new GraphQLError(`Expected value but got: { api_key: "${KEY}" }`)] },
    { requestId: "r1" },
    logger,
  );
  assert.ok(masked);
  assert.equal(JSON.stringify(masked).includes(KEY), false);
  assert.equal(lines.join("").includes(KEY), false);
});

test("a value with nothing to redact is passed on as it is; one with a secret is copied, the original untouched", () => {
  const clean = {
    requestId: "r-1",
    user: "alice",
    durationMs: 3.5,
    errors: [{ message: "no such base", path: ["kb"] }],
  };
  assert.equal(redactValue(clean), clean);
  const nested = { requestId: "r-2", config: { model: "m", api_key: KEY }, tags: ["a", `Bearer ${JWT}`] };
  const redacted = redactValue(nested) as typeof nested;
  assert.notEqual(redacted, nested);
  assert.equal(redacted.config.api_key, "[redacted]");
  assert.equal(redacted.tags[1]!.includes(JWT), false);
  assert.equal(redacted.tags[0], "a");
  assert.equal(nested.config.api_key, KEY, "the caller's object is not changed");
  // Not a plain object: its own serialisation (toJSON) might differ from the fields checked, so a copy goes out.
  class Wrapped {
    model = "m";
    toJSON() {
      return { api_key: KEY };
    }
  }
  const wrapped = redactValue(new Wrapped());
  assert.deepEqual(wrapped, { model: "m" });
  assert.equal(JSON.stringify(wrapped).includes(KEY), false);
});

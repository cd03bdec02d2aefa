// Which address the anonymous rate limit counts: the socket's, whatever X-Forwarded-For says, unless
// TRUST_PROXY is on; then the last X-Forwarded-For entry (the one the trusted proxy appended).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Redis } from "ioredis";
import { gatewayForFile, redisClient, type TestGateway } from "./helpers.js";

const limits = { RATE_LIMIT_ANONYMOUS_POINTS: "2", RATE_LIMIT_WINDOW_MS: "120000" };
const directState = gatewayForFile(limits);
const proxiedState = gatewayForFile({ ...limits, TRUST_PROXY: "true" });
let direct: TestGateway;
let proxied: TestGateway;
let cache: Redis;

before(async () => {
  direct = await directState.ready;
  proxied = await proxiedState.ready;
  cache = redisClient(direct.config, "cache");
});
after(() => cache?.disconnect());

/** An anonymous operation sent with `forwardedFor`: the error code it met, or null when it ran. */
async function anonymous(gateway: TestGateway, forwardedFor: string): Promise<string | null> {
  const response = await fetch(`${gateway.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-forwarded-for": forwardedFor },
    body: JSON.stringify({ query: "{ __typename }" }),
  });
  const body = (await response.json()) as { errors?: { extensions?: { code?: string } }[] };
  return body.errors ? String(body.errors[0]?.extensions?.code) : null;
}

/** The addresses counted under a gateway's namespace, with their counts. */
async function counted(gateway: TestGateway): Promise<Record<string, string>> {
  const prefix = `ratelimit:${gateway.config.rateLimit.namespace}:ip:`;
  const keys = await cache.keys(`${prefix}*`);
  return Object.fromEntries(
    await Promise.all(keys.map(async (key) => [key.slice(prefix.length), (await cache.get(key))!] as const)),
  );
}

test("without TRUST_PROXY a caller cannot pick its address: X-Forwarded-For is ignored, the socket's is counted", async () => {
  assert.equal(await anonymous(direct, "203.0.113.1"), null);
  assert.equal(await anonymous(direct, "203.0.113.2"), null);
  assert.equal(await anonymous(direct, "203.0.113.3"), "RATE_LIMITED", "a new header does not buy a new count");
  const addresses = Object.keys(await counted(direct));
  assert.equal(addresses.length, 1, JSON.stringify(addresses));
  assert.match(addresses[0]!, /127\.0\.0\.1$/, "the socket's address");
});

test("with TRUST_PROXY the last X-Forwarded-For entry is counted, so callers behind the proxy are counted apart", async () => {
  // Entries before the last are the caller's to write; only the proxy's own (the last) is believed.
  assert.equal(await anonymous(proxied, "10.0.0.9, 198.51.100.1"), null);
  assert.equal(await anonymous(proxied, "10.0.0.8, 198.51.100.1"), null);
  assert.equal(await anonymous(proxied, "10.0.0.7, 198.51.100.1"), "RATE_LIMITED");
  assert.equal(await anonymous(proxied, "198.51.100.2"), null, "another client behind the proxy has its own count");
  assert.deepEqual(await counted(proxied), { "198.51.100.1": "3", "198.51.100.2": "1" });
});

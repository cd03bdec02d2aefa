// The rate limit is kept in Redis: two gateways sharing one Redis share each caller's count.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Redis } from "ioredis";
import { pino } from "pino";
import { eventually, privateStack, sharedStackEnv, startGateway, uniqueName, type TestGateway } from "./helpers.js";
import { wsOperation } from "./ws.js";

let closeStack: () => Promise<void>;
let sharedEnv: Record<string, string>;
let first: TestGateway;
let second: TestGateway;
let cache: Redis;
const namespace = uniqueName("rl");
const WINDOW_MS = 120_000;

before(async () => {
  const stack = await sharedStackEnv();
  closeStack = stack.close;
  sharedEnv = stack.env;
  const shared = {
    RATE_LIMIT_NAMESPACE: namespace,
    RATE_LIMIT_POINTS: "3",
    RATE_LIMIT_ANONYMOUS_POINTS: "4",
    RATE_LIMIT_WINDOW_MS: String(WINDOW_MS),
  };
  first = await startGateway(stack.env, shared);
  second = await startGateway(stack.env, shared);
  assert.equal(first.config.redis.url, second.config.redis.url, "both gateways use the same Redis");
  assert.notEqual(first.url, second.url);
  cache = new Redis(first.config.redis.url, { db: first.config.redis.db.cache });
});
after(async () => {
  cache.disconnect();
  await first.close();
  await second.close();
  await closeStack();
});

const q = "{ __typename }";

test("anonymous callers are limited per address across both gateways, with RATE_LIMITED, 429 and Retry-After", async () => {
  for (const gateway of [first, second, first, second]) {
    const result = await gateway.query(q);
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  }
  const response = await fetch(`${first.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: q }),
  });
  assert.equal(response.status, 429);
  const retryAfter = Number(response.headers.get("retry-after"));
  assert.ok(retryAfter >= 1 && retryAfter <= WINDOW_MS / 1000, `Retry-After ${retryAfter}`);
  const body = (await response.json()) as { errors: { message: string; extensions: Record<string, unknown> }[] };
  const error = body.errors[0]!;
  assert.equal(error.extensions.code, "RATE_LIMITED");
  assert.equal(error.extensions.limit, 4);
  assert.equal(error.extensions.retryAfterSeconds, retryAfter);
  assert.match(
    error.message,
    /^rate limit exceeded: 5 operations exceed the limit of 4 per 120 s for this ip; retry after \d+ s$/,
  );
  assert.equal(error.extensions.http, undefined, "the http extension is not sent to the client");
  // The second gateway refuses too: the count lives in Redis, not in either process.
  const elsewhere = await second.query(q);
  assert.equal(elsewhere.errors?.[0]?.extensions?.code, "RATE_LIMITED");
  // Over graphql-ws the same count applies.
  const overWs = await wsOperation(second.url, { query: q });
  assert.equal(overWs.results[0]?.errors?.[0]?.extensions?.code, "RATE_LIMITED");
});

test("signed-in users are limited per user, across both gateways and graphql-ws, and not by address", async () => {
  const alice = uniqueName("alice");
  const bob = uniqueName("bob");
  const aliceToken = await first.token(alice);
  const bobToken = await second.token(bob);
  // The address is already over its anonymous limit (previous test); signed-in users are counted apart.
  assert.equal((await first.query(q, { token: aliceToken })).errors, undefined);
  assert.equal((await second.query(q, { token: aliceToken })).errors, undefined);
  const third = await wsOperation(first.url, { query: q }, { Authorization: `Bearer ${aliceToken}` });
  assert.equal(third.results[0]?.errors, undefined, JSON.stringify(third.results));
  const fourth = await second.query(q, { token: aliceToken });
  assert.equal(fourth.status, 429);
  assert.equal(fourth.errors?.[0]?.extensions?.code, "RATE_LIMITED");
  assert.match(fourth.errors[0].message, /4 operations exceed the limit of 3 per 120 s for this user/);
  // Bob has his own count.
  assert.equal((await first.query(q, { token: bobToken })).errors, undefined);

  // The count is one key per user in the cache database, expiring with the window.
  const key = `ratelimit:${namespace}:user:${alice}`;
  assert.equal(await cache.get(key), "4");
  const ttl = await cache.pttl(key);
  assert.ok(ttl > 0 && ttl <= WINDOW_MS, `ttl ${ttl}`);
});

test("when the window expires the caller may go on", async () => {
  const carol = uniqueName("carol");
  const token = await first.token(carol);
  for (let i = 0; i < 3; i++) assert.equal((await first.query(q, { token })).errors, undefined);
  assert.equal((await second.query(q, { token })).errors?.[0]?.extensions?.code, "RATE_LIMITED");
  // End the window now instead of waiting for it.
  assert.equal(await cache.pexpire(`ratelimit:${namespace}:user:${carol}`, 1), 1);
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && (await cache.exists(`ratelimit:${namespace}:user:${carol}`)) === 1)
    await new Promise((r) => setTimeout(r, 10));
  assert.equal((await second.query(q, { token })).errors, undefined);
});

test("when Redis cannot be reached the operation runs (fail open) and a warning is logged", async () => {
  const redisOnly = await privateStack(["redis"]);
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: "warn" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const gateway = await startGateway(
    { ...sharedEnv, REDIS_URL: redisOnly.env.REDIS_URL },
    { RATE_LIMIT_ANONYMOUS_POINTS: "1" },
    { logger },
  );
  try {
    assert.equal((await gateway.query(q)).errors, undefined);
    assert.equal(
      (await gateway.query(q)).errors?.[0]?.extensions?.code,
      "RATE_LIMITED",
      "the limit applies while Redis is up",
    );
    await redisOnly.stopServer("redis");
    const result = await gateway.query(q);
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    assert.deepEqual(result.data, { __typename: "Query" });
    assert.ok(
      lines.some((line) => line.level === 40 && /rate limit check failed/.test(line.msg)),
      JSON.stringify(lines),
    );
  } finally {
    await gateway.close();
    await redisOnly.close();
  }
});

test("a logged-out token counts like no token: its owner's fresh token keeps the whole limit", async () => {
  const dave = uniqueName("dave");
  const revoked = await first.token(dave);
  const loggedOut = await first.query<{ logout: boolean }>("mutation { logout }", { token: revoked });
  assert.equal(loggedOut.errors, undefined, JSON.stringify(loggedOut.errors));
  // More operations with the revoked token than the user limit (3), on both gateways and over graphql-ws.
  for (const gateway of [first, second, first, second, first]) {
    const refused = await gateway.query(q, { token: revoked });
    assert.ok(
      ["UNAUTHENTICATED", "RATE_LIMITED"].includes(refused.errors?.[0]?.extensions?.code as string),
      JSON.stringify(refused),
    );
  }
  const overWs = await wsOperation(second.url, { query: q }, { Authorization: `Bearer ${revoked}` });
  assert.ok(overWs.results[0]?.errors?.length, JSON.stringify(overWs));
  const key = `ratelimit:${namespace}:user:${dave}`;
  // Only the logout counted for dave: an operation counted beside the token check is given back.
  await eventually(async () => (await cache.get(key)) === "1", "the revoked token's counts given back", 10_000);
  const fresh = await second.token(dave);
  for (let i = 0; i < 2; i++) {
    const result = await [first, second][i]!.query(q, { token: fresh });
    assert.equal(result.errors, undefined, `operation ${i + 2} of 3: ${JSON.stringify(result.errors)}`);
  }
  assert.equal((await first.query(q, { token: fresh })).errors?.[0]?.extensions?.code, "RATE_LIMITED");
});

test("a logged-out token registered again (a sign-in within the same second mints the same JWT) counts by its user again", async () => {
  const erin = uniqueName("erin");
  const token = await first.token(erin);
  const loggedOut = await first.query<{ logout: boolean }>("mutation { logout }", { token });
  assert.equal(loggedOut.errors, undefined, JSON.stringify(loggedOut.errors));
  const refused = await first.query(q, { token });
  // Counted by address now (where earlier tests may have spent the limit): either way it is remembered as revoked.
  assert.ok(
    ["UNAUTHENTICATED", "RATE_LIMITED"].includes(refused.errors?.[0]?.extensions?.code as string),
    JSON.stringify(refused),
  );
  await first.app.stores.redis.tokens.register(token, erin, 600);
  const key = `ratelimit:${namespace}:user:${erin}`;
  const before = Number(await cache.get(key));
  const again = await first.query(q, { token });
  assert.equal(again.errors, undefined, JSON.stringify(again.errors));
  await eventually(async () => Number(await cache.get(key)) === before + 1, "the operation counted by user");
});

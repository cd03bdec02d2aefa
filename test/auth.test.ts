// LAYRA-compatible bearer auth over HTTP: HS256 {sub, exp} with SECRET_KEY, valid only while
// Redis DB 0 holds token:{jwt}; logout revokes it; only `health` is public.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { test } from "node:test";
import { Redis } from "ioredis";
import { SignJWT } from "jose";
import { gatewayForFile, TEST_SECRET } from "./helpers.js";

const file = gatewayForFile();

/** DB 0 on a connection of the test's own, written the way LAYRA's login writes it. */
async function withTokenDb<T>(use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(file.gateway.config.redis.url, { db: file.gateway.config.redis.db.token });
  try {
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

const sign = (claims: Record<string, unknown>, secret = TEST_SECRET) =>
  new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(secret));

async function codeFor(authorization: string | undefined) {
  const response = await fetch(`${file.gateway.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
    body: JSON.stringify({ query: "{ me { username } }" }),
  });
  const body = (await response.json()) as {
    data?: { me?: { username: string } | null };
    errors?: { extensions?: { code?: string }; message: string }[];
  };
  return {
    code: body.errors?.[0]?.extensions?.code,
    message: body.errors?.[0]?.message,
    username: body.data?.me?.username,
  };
}

test("a registered token authenticates its subject", async () => {
  const token = await file.gateway.token("alice");
  assert.deepEqual(await codeFor(`Bearer ${token}`), { code: undefined, message: undefined, username: "alice" });
});

test("no token, a malformed header, a bad signature, an expired token, or a token missing from Redis: UNAUTHENTICATED", async () => {
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const forged = await sign({ sub: "alice", exp }, "another-secret");
  const expired = await sign({ sub: "alice", exp: Math.floor(Date.now() / 1000) - 10 });
  await withTokenDb((redis) => redis.set(`token:${expired}`, "alice", "EX", 60));
  const unregistered = await sign({ sub: "alice", exp });
  const cases: [string, string | undefined, RegExp][] = [
    ["no token", undefined, /authentication required/],
    ["malformed header", "Token abc", /Bearer/],
    ["bad signature", `Bearer ${forged}`, /not valid/],
    ["expired", `Bearer ${expired}`, /expired/],
    ["not in Redis", `Bearer ${unregistered}`, /not registered or has been revoked/],
  ];
  for (const [name, header, message] of cases) {
    const result = await codeFor(header);
    assert.equal(result.code, "UNAUTHENTICATED", name);
    assert.match(result.message ?? "", message, name);
    assert.equal(result.username, undefined, name);
  }
});

test("health is public, even with a bad token", async () => {
  const result = await file.gateway.query<{ health: { ready: boolean } }>("{ health { ready } }", { token: "garbage" });
  assert.equal(result.errors, undefined);
  assert.equal(typeof result.data?.health.ready, "boolean");
});

test("logout revokes the token at once; other tokens of the user keep working", async () => {
  const first = await file.gateway.token("carol");
  const second = await file.gateway.token("carol", 7200);
  const logout = await file.gateway.query<{ logout: boolean }>("mutation { logout }", { token: first });
  assert.equal(logout.data?.logout, true);
  assert.equal(await withTokenDb((redis) => redis.get(`token:${first}`)), null);
  assert.equal((await codeFor(`Bearer ${first}`)).code, "UNAUTHENTICATED");
  assert.equal((await codeFor(`Bearer ${second}`)).username, "carol");
});

test("a token LAYRA's own login wrote (token:{jwt} -> username, no gateway involved) is accepted", async () => {
  const jwt = await sign({ sub: "dave", exp: Math.floor(Date.now() / 1000) + 600 });
  await withTokenDb((redis) => redis.set(`token:${jwt}`, "dave", "EX", 600));
  assert.equal((await codeFor(`Bearer ${jwt}`)).username, "dave");
});

test("the dev-only token command registers a working token, and refuses to run in production mode", async () => {
  const { gateway, env } = file;
  const run = (nodeEnv: string) =>
    promisify(execFile)(process.execPath, ["--import", "tsx", "dev/dev-token.ts", "devuser", "600"], {
      env: {
        ...process.env,
        ...env,
        NODE_ENV: nodeEnv,
        SECRET_KEY: TEST_SECRET,
        MONGODB_DB: gateway.config.mongo.database,
      },
    });
  const minted = (await run("development")).stdout.trim();
  assert.equal((await codeFor(`Bearer ${minted}`)).username, "devuser");
  await assert.rejects(
    run("production"),
    (error: { code?: number; stderr?: string }) => error.code === 1 && /refuses to run/.test(error.stderr ?? ""),
  );
});

// CORS: nothing cross-origin by default, an explicit list echoes only listed origins, `*` never
// comes with credentials (and the configuration refuses the pair).
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, loadConfig } from "../src/config.js";
import { gatewaysForFile } from "./helpers.js";

const gateway = gatewaysForFile();
const APP = "http://127.0.0.1:5173";
const OTHER = "https://evil.example";

async function preflight(url: string, origin: string) {
  return fetch(`${url}/graphql`, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization, content-type",
    },
  });
}

async function post(url: string, origin: string) {
  return fetch(`${url}/graphql`, {
    method: "POST",
    headers: { origin, "content-type": "application/json" },
    body: JSON.stringify({ query: "{ health { ready } }" }),
  });
}

test("by default no origin gets CORS headers: pages on other origins cannot read answers", async () => {
  const { url } = await gateway();
  for (const origin of [APP, OTHER]) {
    assert.equal((await preflight(url, origin)).headers.get("access-control-allow-origin"), null);
    const response = await post(url, origin);
    assert.equal(response.status, 200, "the request itself is answered; the browser withholds it");
    assert.equal(response.headers.get("access-control-allow-origin"), null);
    assert.equal(response.headers.get("access-control-allow-credentials"), null);
  }
});

test("a listed origin is allowed with the headers a client sends, without credentials unless asked", async () => {
  const { url } = await gateway({ CORS_ORIGINS: `${APP}, http://localhost:5173` });
  const allowed = await preflight(url, APP);
  assert.equal(allowed.status, 204);
  assert.equal(allowed.headers.get("access-control-allow-origin"), APP);
  assert.match(allowed.headers.get("vary") ?? "", /origin/i);
  assert.match(allowed.headers.get("access-control-allow-headers") ?? "", /authorization/);
  assert.match(allowed.headers.get("access-control-allow-headers") ?? "", /x-graphql-csrf/);
  assert.equal(allowed.headers.get("access-control-allow-credentials"), null);
  assert.equal((await post(url, APP)).headers.get("access-control-allow-origin"), APP);

  const refused = await preflight(url, OTHER);
  assert.equal(refused.headers.get("access-control-allow-origin"), null);
  assert.equal((await post(url, OTHER)).headers.get("access-control-allow-origin"), null);
});

test("`*` lets any origin read answers, never with credentials; credentials come only with a list", async () => {
  const any = await gateway({ CORS_ORIGINS: "*" });
  const response = await post(any.url, OTHER);
  assert.equal(response.headers.get("access-control-allow-origin"), OTHER);
  assert.equal(response.headers.get("access-control-allow-credentials"), null);

  const withCredentials = await gateway({ CORS_ORIGINS: APP, CORS_CREDENTIALS: "true" });
  const listed = await post(withCredentials.url, APP);
  assert.equal(listed.headers.get("access-control-allow-origin"), APP);
  assert.equal(listed.headers.get("access-control-allow-credentials"), "true");
  assert.equal((await post(withCredentials.url, OTHER)).headers.get("access-control-allow-origin"), null);
});

test("the configuration refuses credentials with `*` or no list, and anything that is not an origin", () => {
  const base = { SECRET_KEY: "s", MINIO_ACCESS_KEY: "a", MINIO_SECRET_KEY: "b" };
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig({ ...base, ...env });
      return [];
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      return error.problems;
    }
  };
  assert.deepEqual(loadConfig(base).cors, { origins: [], credentials: false });
  assert.match(problems({ CORS_ORIGINS: "*", CORS_CREDENTIALS: "true" }).join(), /CORS_CREDENTIALS/);
  assert.match(problems({ CORS_CREDENTIALS: "true" }).join(), /CORS_CREDENTIALS/);
  assert.match(problems({ CORS_ORIGINS: "http://app.example/path" }).join(), /CORS_ORIGINS/);
  assert.match(problems({ CORS_ORIGINS: "app.example" }).join(), /CORS_ORIGINS/);
  assert.deepEqual(problems({ CORS_ORIGINS: "https://app.example,http://127.0.0.1:5173" }), []);
});

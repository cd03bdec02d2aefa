// The production image and the compose files as far as a test can see them without Docker: the
// Dockerfile's stages and instructions, the build context .dockerignore leaves, and both compose
// files validated against the Compose Specification's JSON schema (test/fixtures/compose-spec.json).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { Ajv } from "ajv";
import semver from "semver";
import { parse, type Tags } from "yaml";

const root = resolve(import.meta.dirname, "..");
const read = (file: string) => readFileSync(join(root, file), "utf8");

// ---- Dockerfile ----

interface Instruction {
  keyword: string;
  args: string;
}
interface Stage {
  image: string;
  name: string | null;
  instructions: Instruction[];
}

/** Dockerfile instructions by stage: comments dropped, `\` continuations joined. */
function dockerStages(text: string): Stage[] {
  const logical = text
    .split("\n")
    .filter((line) => !/^\s*#/.test(line))
    .join("\n")
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
  const stages: Stage[] = [];
  for (const line of logical) {
    const [, keyword = "", args = ""] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (keyword.toUpperCase() === "FROM") {
      const [, image = "", name = null] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args) ?? [];
      stages.push({ image, name, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ keyword: keyword.toUpperCase(), args });
    }
  }
  return stages;
}

const execForm = (args: string): string[] | null => {
  try {
    const parsed: unknown = JSON.parse(args);
    return Array.isArray(parsed) ? parsed.map(String) : null;
  } catch {
    return null;
  }
};

const stages = dockerStages(read("Dockerfile"));
const build = stages.find((stage) => stage.name === "build");
const runtime = stages.at(-1)!;
const runs = (stage: Stage | undefined) =>
  (stage?.instructions ?? []).filter((i) => i.keyword === "RUN").map((i) => i.args.replace(/\s+/g, " "));
const only = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword);

test("Dockerfile: a build stage compiles with every dependency, a separate runtime stage runs the output", () => {
  assert.ok(stages.length >= 2, `${stages.length} stages`);
  assert.ok(build, "a stage named build");
  assert.notEqual(runtime, build);
  assert.ok(
    runs(build).some((run) => /\bnpm ci\b/.test(run) && !run.includes("--omit=dev")),
    "build: npm ci with dev dependencies",
  );
  assert.ok(
    runs(build).some((run) => run.includes("npm run build")),
    "build: npm run build",
  );
  assert.ok(
    runs(runtime).some((run) => /\bnpm ci\b.*--omit=dev/.test(run)),
    "runtime: npm ci --omit=dev",
  );
  const copies = only(runtime, "COPY").map((i) => i.args);
  assert.ok(
    copies.some((args) => /--from=build\s+\S*dist\s/.test(args)),
    `runtime copies dist/ from the build stage: ${copies.join(" | ")}`,
  );
  assert.ok(!copies.some((args) => /(^|\s)src\b/.test(args)), "runtime carries no TypeScript sources");
  // What the build stage copies exists and is not excluded by .dockerignore.
  for (const copy of only(build, "COPY")) {
    const sources = copy.args.split(/\s+/).filter((word) => !word.startsWith("--"));
    for (const source of sources.slice(0, -1)) {
      assert.ok(existsSync(join(root, source)), `build copies ${source}, which exists`);
      assert.ok(!dockerignore.includes(source), `.dockerignore keeps ${source} in the context`);
    }
  }
});

test("Dockerfile: pinned maintained Node LTS image that package.json's engines accept", () => {
  for (const stage of stages) {
    const match = /^node:(\d+\.\d+\.\d+)-(trixie|bookworm)-slim$/.exec(stage.image);
    assert.ok(match, `${stage.image} is node:<x.y.z>-<debian>-slim`);
    const version = match[1]!;
    // Even majors are the LTS lines; 20 reached its end of life in April 2026.
    assert.ok(semver.major(version) % 2 === 0 && semver.major(version) >= 22, `${version} is a maintained LTS line`);
    const engines = JSON.parse(read("package.json")).engines.node as string;
    assert.ok(semver.satisfies(version, engines), `${version} satisfies engines ${engines}`);
  }
  assert.equal(new Set(stages.map((stage) => stage.image)).size, 1, "build and runtime use the same image");
});

test("Dockerfile: runtime runs node dist/main.js as a non-root user under tini, with pdftoppm installed", () => {
  const cmd = only(runtime, "CMD").at(-1);
  assert.deepEqual(execForm(cmd?.args ?? ""), ["node", "dist/main.js"]);
  const entrypoint = execForm(only(runtime, "ENTRYPOINT").at(-1)?.args ?? "");
  assert.ok(
    entrypoint && /(^|\/)tini$/.test(entrypoint[0]!) && entrypoint[1] === "--",
    `ENTRYPOINT ${entrypoint?.join(" ")}`,
  );
  const install = runs(runtime).find((run) => run.includes("apt-get install"));
  assert.ok(install && /\btini\b/.test(install) && /\bpoppler-utils\b/.test(install), `installs: ${install}`);
  const users = only(runtime, "USER").map((i) => i.args.split(":")[0]);
  assert.ok(users.length > 0, "runtime sets USER");
  assert.ok(!["root", "0"].includes(users.at(-1)!), `runs as ${users.at(-1)}`);
  const env = only(runtime, "ENV")
    .map((i) => i.args)
    .join(" ");
  assert.match(env, /NODE_ENV=production/);
});

test("Dockerfile: the healthcheck follows PORT", () => {
  const healthcheck = only(runtime, "HEALTHCHECK").at(-1)?.args ?? "";
  assert.match(healthcheck, /process\.env\.PORT/);
  assert.match(healthcheck, /\/health\b/);
});

// ---- .dockerignore ----

const dockerignore = read(".dockerignore")
  .split("\n")
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith("#"));

test(".dockerignore keeps dependencies, build output, local data, secrets and non-production code out", () => {
  for (const entry of ["node_modules", "dist", ".stack", ".git", ".env", ".env.*", "*.log", "test", "bench", "dev"]) {
    assert.ok(dockerignore.includes(entry), `.dockerignore lists ${entry}`);
  }
  assert.ok(!dockerignore.some((entry) => ["src", "package.json", "package-lock.json"].includes(entry)));
});

// ---- docker-compose ----

// Compose's merge tags; the value after the tag is what the schema sees.
const composeTags: Tags = ["!reset", "!override"].flatMap((tag) => [
  { tag, collection: "map" as const, resolve: (value: unknown) => value },
  { tag, collection: "seq" as const, resolve: (value: unknown) => value },
]);
const loadCompose = (file: string) =>
  parse(read(file), { customTags: composeTags, strict: true }) as {
    services: Record<string, Record<string, unknown>>;
    volumes?: Record<string, unknown>;
    networks?: Record<string, Record<string, unknown>>;
  };

const schemaText = readFileSync(join(root, "test/fixtures/compose-spec.json"), "utf8");
const ajv = new Ajv({ strict: false, allErrors: true });
// The schema is draft-07, Ajv's default; its `$schema` spells the draft's URL with https, which Ajv
// does not know by that name.
const { $schema: _draft, ...composeSchema } = JSON.parse(schemaText) as Record<string, unknown>;
const validateCompose = ajv.compile(composeSchema);
const composeErrors = (document: unknown) =>
  validateCompose(document) ? [] : (validateCompose.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);

test("the vendored Compose Specification schema is the file its notice names", () => {
  assert.equal(
    createHash("sha256").update(schemaText).digest("hex"),
    "46b7d35f19dd93a05f8fea530291bf84d881c1791ec167ecf0e6fb94e639d496",
  );
  // The validator rejects what Compose rejects, so a pass means something.
  assert.notDeepEqual(composeErrors({ services: { gateway: { restart: 5 } } }), []);
  assert.notDeepEqual(composeErrors({ services: { gateway: { imagee: "x" } } }), []);
});

for (const file of ["docker-compose.yml", "docker-compose.layra.yml"]) {
  test(`${file} is valid against the Compose Specification schema`, () => {
    assert.deepEqual(composeErrors(loadCompose(file)), []);
  });
}

const compose = loadCompose("docker-compose.yml");
const commandOf = (service: Record<string, unknown>) =>
  Array.isArray(service.command) ? service.command.join(" ") : String(service.command ?? "");
const healthTest = (service: Record<string, unknown>) =>
  ([] as unknown[]).concat((service.healthcheck as { test?: unknown } | undefined)?.test ?? []).join(" ");

test("docker-compose.yml: every service restarts; every service waited on as healthy has a healthcheck", () => {
  for (const [name, service] of Object.entries(compose.services)) {
    assert.ok(["always", "unless-stopped", "on-failure"].includes(String(service.restart)), `${name} restart`);
    const dependsOn = Array.isArray(service.depends_on) ? {} : ((service.depends_on ?? {}) as Record<string, object>);
    for (const [dependency, condition] of Object.entries(dependsOn)) {
      if ((condition as { condition?: string }).condition !== "service_healthy") continue;
      assert.ok(healthTest(compose.services[dependency] ?? {}), `${name} waits for ${dependency}'s healthcheck`);
    }
  }
  assert.ok(healthTest(compose.services.gateway!), "the gateway has a healthcheck");
});

test("docker-compose.yml: the gateway reads .env, and is healthy when /readiness says so on its PORT", () => {
  const gateway = compose.services.gateway!;
  const envFiles = ([] as unknown[]).concat(gateway.env_file ?? []);
  assert.ok(
    envFiles.some((entry) => entry === ".env" || (entry as { path?: string }).path === ".env"),
    "env_file .env",
  );
  assert.match(healthTest(gateway), /process\.env\.PORT/);
  assert.match(healthTest(gateway), /\/readiness/);
  const environment = gateway.environment as Record<string, string>;
  assert.match(environment.SECRET_KEY!, /:\?/, "SECRET_KEY is required, never defaulted");
});

test("docker-compose.yml: Redis checks health with any password and keeps tokens in a volume", () => {
  const redis = compose.services.redis!;
  const check = healthTest(redis);
  const environment = (redis.environment ?? {}) as Record<string, string>;
  // Either redis-cli reads REDISCLI_AUTH, or the password is passed quoted from the container's env.
  assert.ok(
    (environment.REDISCLI_AUTH?.includes("REDIS_PASSWORD") && !check.includes("-a ")) ||
      /-a "\$\$\{?REDIS_PASSWORD/.test(check),
    check,
  );
  assert.match(commandOf(redis), /--appendonly yes/);
  assert.match(commandOf(redis), /--notify-keyspace-events Khgxt/);
  const volumes = (redis.volumes as string[]).map(String);
  const named = volumes.find((volume) => volume.endsWith(":/data"))?.split(":")[0];
  assert.ok(named && compose.volumes && named in compose.volumes, `a named volume on /data: ${volumes.join(", ")}`);
});

test("docker-compose.yml: a model-server profile for LAYRA's embedding server", () => {
  const modelServer = compose.services["model-server"]!;
  assert.deepEqual(modelServer.profiles, ["model-server"]);
  const environment = compose.services.gateway!.environment as Record<string, string>;
  assert.match(environment.MODEL_SERVER_URL!, /model-server:8005/);
});

test("docker-compose.layra.yml: the gateway joins LAYRA's network and uses its stores, not the bundled ones", () => {
  const override = loadCompose("docker-compose.layra.yml");
  const gateway = override.services.gateway!;
  assert.deepEqual(gateway.networks, ["layra"]);
  assert.equal(override.networks?.layra?.external, true);
  assert.deepEqual(gateway.depends_on, {}, "no dependency on the bundled stores (!reset)");
  assert.match(read("docker-compose.layra.yml"), /depends_on: !reset/);
  const environment = gateway.environment as Record<string, string>;
  assert.match(environment.MONGODB_DB!, /mongodb/);
  assert.match(environment.MINIO_BUCKET_NAME!, /minio-file/);
  // Every third-party server the base file bundles (services with an image, not built from this
  // repo) stays off beside LAYRA, which runs its own.
  const bundled = Object.entries(compose.services)
    .filter(([, service]) => service.image && !service.profiles)
    .map(([name]) => name);
  assert.ok(bundled.length >= 5, `bundled servers: ${bundled.join(", ")}`);
  for (const name of bundled) assert.deepEqual(override.services[name]?.profiles, ["bundled-stores"], name);
  // Services built from this repo besides the gateway (the ingestion worker) start only on request:
  // beside LAYRA's own consumers they would split its consumer group.
  const ownExtras = Object.entries(compose.services)
    .filter(([name, service]) => service.build && name !== "gateway" && !service.profiles)
    .map(([name]) => name);
  for (const name of ownExtras) assert.ok(override.services[name]?.profiles, `${name} has a profile beside LAYRA`);
});

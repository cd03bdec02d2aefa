// Regenerates test/fixtures/layra-captured/ from LAYRA's own code (docs/layra-contract.md, "Captured fixtures"):
// installs LAYRA's backend packages, starts the stores LAYRA writes to, unpacks LAYRA's backend at the pinned
// commit from a local clone of its repository, and runs scripts/capture-layra-fixtures.py against them.
//
//   npx tsx scripts/capture-layra-fixtures.ts <path to a clone of LAYRA's repository>
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { documentPdf } from "../dev/pdf.js";
import { pagePng } from "../dev/png.js";
import { LocalStack } from "../dev/stack/stack.js";

/** LAYRA's commit the fixtures come from: its September 2025 tree (the backend last changed on 2025-08-13). */
const LAYRA_COMMIT = "38988867a31cbfa4de23bf4ba86263a1269ff834";

const layraRepo = process.argv[2];
if (!layraRepo) throw new Error("usage: capture-layra-fixtures.ts <path to a clone of LAYRA's repository>");
const root = new URL("..", import.meta.url).pathname;
const out = join(root, "test/fixtures/layra-captured");
const cache = process.env.LAYRA_STACK_CACHE ?? join(root, ".stack");
execFileSync("bash", [join(root, "dev/stack/install.sh"), "capture"], { stdio: "inherit" });

const source = mkdtempSync(join(tmpdir(), "layra-source-"));
execFileSync("bash", [
  "-c",
  `git -C "$1" archive "$2" backend | tar -x -C "$3"`,
  "archive",
  layraRepo,
  LAYRA_COMMIT,
  source,
]);
writeFileSync(
  join(out, "upload.pdf"),
  await documentPdf("Quarterly report", [
    { heading: "Revenue", body: "Revenue grew by twelve percent in the third quarter." },
    { heading: "Costs", body: "Costs stayed flat while headcount rose." },
  ]),
);
writeFileSync(join(out, "chat-upload.png"), pagePng({ "layra-text": "a photo of the office" }, 90));

const stack = await LocalStack.start({ only: ["mongo", "redis", "s3", "kafka"] });
try {
  const env = stack.env;
  const python = join(cache, "layra-capture-venv/bin/python");
  execFileSync(python, [join(root, "scripts/capture-layra-fixtures.py"), join(source, "backend"), out], {
    cwd: source,
    stdio: "inherit",
    env: {
      ...process.env,
      // LAYRA's settings (app/core/config.py) read these; the Mongo client is built by the script itself,
      // since LAYRA's always logs in as root and the local FerretDB runs without users.
      CAPTURE_MONGODB_URL: env.MONGODB_URL,
      MONGODB_DB: "layra_capture",
      REDIS_URL: env.REDIS_URL.replace("redis://", ""),
      REDIS_PASSWORD: "",
      KAFKA_BROKER_URL: env.KAFKA_BROKER_URL,
      KAFKA_TOPIC: "task_generation",
      MINIO_URL: env.MINIO_URL,
      MINIO_ACCESS_KEY: env.MINIO_ACCESS_KEY,
      MINIO_SECRET_KEY: env.MINIO_SECRET_KEY,
      MINIO_BUCKET_NAME: "minio-file",
      EMBEDDING_IMAGE_DPI: "24",
      LOG_FILE: "/dev/null",
    },
  });
  const packages = execFileSync(python, ["-m", "pip", "freeze"], { encoding: "utf8" }).trim().split("\n");
  writeFileSync(join(out, "source.json"), `${JSON.stringify({ layraCommit: LAYRA_COMMIT, packages }, null, 2)}\n`);
  // Python's indentation of short arrays differs from the repository's formatting, which `npm run lint` checks.
  execFileSync(join(root, "node_modules/.bin/prettier"), ["--write", out], { stdio: "inherit" });
} finally {
  await stack.close();
  rmSync(source, { recursive: true, force: true });
}

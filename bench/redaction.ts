// `npm run bench:redaction`: what the log redaction (src/lib/redact.ts) costs per log line, for the
// operation line every request writes and for a line that carries a secret. Prints `name: value` lines.
import { redactValue } from "../src/lib/redact.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 200_000);

const operationLine = {
  requestId: "6f1c2a7e-5b1d-4c3e-9f0a-2d8e7b6c5a41",
  transport: "http",
  operation: "Profile",
  type: "query",
  outcome: "success",
  durationMs: 12.34,
  user: "alice",
  errors: undefined,
};
const lineWithSecret = {
  requestId: "6f1c2a7e-5b1d-4c3e-9f0a-2d8e7b6c5a41",
  store: "redis",
  error: "connect ECONNREFUSED redis://default:hunter2@127.0.0.1:6379",
  config: { api_key: "sk-not-a-real-key", model: "qwen" },
};

function nsPerLine(line: object): number {
  for (let i = 0; i < ROUNDS / 10; i++) redactValue(line); // warm-up
  const started = process.hrtime.bigint();
  for (let i = 0; i < ROUNDS; i++) redactValue(line);
  return Number(process.hrtime.bigint() - started) / ROUNDS;
}

console.log(`redaction ns per operation log line: ${nsPerLine(operationLine).toFixed(0)}`);
console.log(`redaction ns per log line with secrets: ${nsPerLine(lineWithSecret).toFixed(0)}`);
console.log(`redaction copies the operation line: ${redactValue(operationLine) !== operationLine}`);

// Bench child process for bench/throughput.ts: `bare` serves a bare graphql-yoga schema answering
// `{ __typename }`; `gateway` serves this gateway (config from the environment) and mints a token.
// Either reports its URL over IPC and stops on "stop".
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createSchema, createYoga } from "graphql-yoga";
import { startBuiltGateway } from "./built-gateway.js";

const mode = process.argv[2];
let stop: () => Promise<void>;
if (mode === "bare") {
  const yoga = createYoga({ schema: createSchema({ typeDefs: "type Query { hello: String }" }) });
  const server = createServer(yoga);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  stop = () => new Promise((resolve) => server.close(() => resolve()));
  process.send!({ type: "ready", url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
} else {
  // Compiled, as production runs it (bench/built-gateway.ts).
  const { app, url, token } = await startBuiltGateway();
  stop = () => app.stop();
  process.send!({ type: "ready", url, token });
}
process.on("message", async (message: { type: string }) => {
  if (message.type !== "stop") return;
  await stop();
  process.exit(0);
});

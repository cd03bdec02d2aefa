// The Node HTTP server in front of Yoga, and starting a server on its port.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { OperationalRoutes } from "./operational-routes.js";
import type { GatewayYoga } from "./yoga.js";

/** `/` redirects to the GraphQL path, the operational routes answer theirs, Yoga everything else. */
export function createGatewayServer(yoga: GatewayYoga, operational: OperationalRoutes): Server {
  const server = createServer((req, res) => {
    if ((req.url ?? "/").split("?")[0] === "/") {
      // Newcomers open the bare address: the API (and GraphiQL in development) is at /graphql.
      res.writeHead(302, { location: yoga.graphqlEndpoint }).end();
      return;
    }
    void operational(req, res).then((handled) => {
      if (!handled) void yoga(req, res);
    });
  });
  // Node closes an idle keep-alive connection after 5 s, about when clients and load balancers reuse
  // it, and the request then sent on it fails with ECONNRESET. Keep idle connections longer than
  // they do (the usual 60 s), so the client is the one that closes them.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  return server;
}

/** Listens on `port` (0 = a random free one); a port in use (EADDRINUSE) rejects instead of leaving it pending. */
export async function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}

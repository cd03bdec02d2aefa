import SchemaBuilder from "@pothos/core";
import RelayPlugin from "@pothos/plugin-relay";
import ScopeAuthPlugin from "@pothos/plugin-scope-auth";
import type { AuthenticatedContext, Context } from "../context.js";
import { Unauthenticated } from "../errors.js";
import { decodeGlobalId, encodeGlobalId } from "./global-id.js";

export const builder = new SchemaBuilder<{
  Context: Context;
  AuthScopes: { loggedIn: boolean };
  // `t.withAuth({ loggedIn: true })` hands its resolvers this context, with the viewer set.
  AuthContexts: { loggedIn: AuthenticatedContext };
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
    Upload: { Input: File; Output: never };
  };
  DefaultFieldNullability: false;
  Connection: { totalCount: number };
}>({
  plugins: [ScopeAuthPlugin, RelayPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    // Check a subscription's scopes when it is created, before any event (not only per event).
    authorizeOnSubscribe: true,
    authScopes: (context) => ({ loggedIn: context.viewer !== null }),
    unauthorizedError: (_parent, context) => context.authError ?? new Unauthenticated(),
  },
  relay: {
    clientMutationId: "omit",
    cursorType: "String",
    encodeGlobalID: encodeGlobalId,
    decodeGlobalID: decodeGlobalId,
    nodeQueryOptions: { authScopes: { loggedIn: true } },
    nodesQueryOptions: { authScopes: { loggedIn: true } },
  },
});

builder.queryType({});

builder.globalConnectionField("totalCount", (t) => t.int({ resolve: (connection) => connection.totalCount }));

import SchemaBuilder from "@pothos/core";
import ComplexityPlugin from "@pothos/plugin-complexity";
import RelayPlugin from "@pothos/plugin-relay";
import ScopeAuthPlugin from "@pothos/plugin-scope-auth";
import type { AuthenticatedContext, Context } from "../context.js";
import { Unauthenticated } from "../errors.js";
import { requireListLength } from "../lib/input.js";
import { connectionEdgesCost, fieldCost } from "./cost.js";

/** The most ids one `nodes` call loads. */
const MAX_NODES = 100;
import { decodeGlobalId, encodeGlobalId, loadNode, type DecodedGlobalId } from "./global-id.js";

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
  // A count the page did not tell is a thunk, run only when `totalCount` is selected (src/lib/pagination.ts).
  Connection: { totalCount: number | (() => Promise<number>) };
}>({
  plugins: [ScopeAuthPlugin, RelayPlugin, ComplexityPlugin],
  defaultFieldNullability: false,
  complexity: {
    fieldComplexity: fieldCost,
    // The limit is checked once per operation before it runs (src/plugins/limits.ts), not by the
    // plugin inside root resolvers, so that a refused operation has no `data` like every other limit.
    disabled: true,
  },
  scopeAuth: {
    // Check a subscription's scopes when it is created, before any event (not only per event).
    authorizeOnSubscribe: true,
    authScopes: (context) => ({ loggedIn: context.viewer !== null }),
    unauthorizedError: (_parent, context) => context.authError ?? new Unauthenticated(),
  },
  relay: {
    clientMutationId: "omit",
    cursorType: "String",
    edgesFieldOptions: connectionEdgesCost,
    encodeGlobalID: encodeGlobalId,
    decodeGlobalID: decodeGlobalId,
    // Loaded here rather than by the plugin, so that an id naming no node type is BAD_USER_INPUT and
    // one bad id in `nodes` fails its own item only (src/schema/global-id.ts).
    nodeQueryOptions: {
      authScopes: { loggedIn: true },
      resolve: (_root, args, context) => loadNode(context, "id", args.id as unknown as DecodedGlobalId),
    },
    nodesQueryOptions: {
      authScopes: { loggedIn: true },
      resolve: (_root, args, context) =>
        requireListLength("ids", args.ids as unknown as DecodedGlobalId[], MAX_NODES).map((id) =>
          loadNode(context, "ids", id),
        ),
    },
  },
});

builder.queryType({});

builder.globalConnectionField("totalCount", (t) =>
  t.int({
    resolve: ({ totalCount }) => (typeof totalCount === "function" ? totalCount() : totalCount),
  }),
);

import { revokeToken } from "../resolvers/auth.js";
import { builder } from "./builder.js";

builder.mutationType({});

builder.mutationField("logout", (t) =>
  t.withAuth({ loggedIn: true }).boolean({
    nullable: true,
    description: "Revokes the caller's token (deletes `token:{jwt}` in Redis DB 0): it stops working at once.",
    resolve: (_root, _args, context) => revokeToken(context, context.viewer),
  }),
);

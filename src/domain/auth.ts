// LAYRA-compatible bearer auth (docs/layra-contract.md, "Auth"): an HS256 JWT {sub, exp} signed with SECRET_KEY
// that is valid only while Redis DB 0 holds `token:{jwt}`.
import { errors as joseErrors, jwtVerify, SignJWT } from "jose";
import type { GraphQLError } from "graphql";
import type { Config } from "../config.js";
import type { AuthenticatedContext, Viewer } from "../context.js";
import { Forbidden, Unauthenticated, UpstreamUnavailable } from "../errors.js";
import type { Stores } from "../stores/index.js";

const secret = (config: Config) => new TextEncoder().encode(config.auth.secretKey);

export type Authentication = { viewer: Viewer; error: null } | { viewer: null; error: GraphQLError | null };

/** Reads `Bearer <jwt>` from an Authorization value (HTTP header or graphql-ws connectionParams). */
export function bearerToken(authorization: unknown): string | null {
  if (typeof authorization !== "string") return null;
  const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
  return match ? match[1]! : null;
}

export async function authenticate(config: Config, stores: Stores, authorization: unknown): Promise<Authentication> {
  if (authorization === undefined || authorization === null || authorization === "")
    return { viewer: null, error: null };
  const jwt = bearerToken(authorization);
  if (!jwt) return { viewer: null, error: new Unauthenticated("the Authorization value must be `Bearer <token>`") };
  let username: string;
  try {
    const { payload } = await jwtVerify(jwt, secret(config), { algorithms: [config.auth.algorithm] });
    if (typeof payload.sub !== "string" || payload.sub === "")
      throw new joseErrors.JWTClaimValidationFailed("missing sub", payload);
    if (typeof payload.exp !== "number") throw new joseErrors.JWTClaimValidationFailed("missing exp", payload);
    username = payload.sub;
  } catch (error) {
    const reason = error instanceof joseErrors.JWTExpired ? "the token has expired" : "the token is not valid";
    return { viewer: null, error: new Unauthenticated(reason) };
  }
  let registered: string | null;
  try {
    registered = await stores.redis.tokens.owner(jwt);
  } catch (error) {
    return {
      viewer: null,
      error: new UpstreamUnavailable("redis", error instanceof Error ? error.message : String(error)),
    };
  }
  if (registered === null)
    return { viewer: null, error: new Unauthenticated("the token is not registered or has been revoked") };
  return { viewer: { username, token: jwt }, error: null };
}

/** Signs a token for `username` and registers it the way LAYRA's login does (`token:{jwt}`, `user:{username}`). */
export async function mintToken(config: Config, stores: Stores, username: string, ttlSeconds: number): Promise<string> {
  const exp = Math.floor(Date.now() / 1000) + ttlSeconds;
  const jwt = await new SignJWT({ sub: username, exp })
    .setProtectedHeader({ alg: config.auth.algorithm, typ: "JWT" })
    .sign(secret(config));
  await stores.redis.tokens.register(jwt, username, ttlSeconds);
  return jwt;
}

/** A real revoke, which LAYRA's logout lacks: the token stops working at once. */
export async function revokeToken(stores: Stores, viewer: Viewer): Promise<boolean> {
  return stores.redis.tokens.revoke(viewer.token);
}

/** Operations on every user's data are for the usernames listed in OPERATOR_USERNAMES. */
export function requireOperator(context: AuthenticatedContext, what: string): void {
  if (!context.config.operatorUsernames.has(context.viewer.username)) {
    throw new Forbidden(`${what} needs an operator username (OPERATOR_USERNAMES)`);
  }
}

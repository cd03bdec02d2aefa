// LAYRA-compatible bearer auth (docs/layra-contract.md, "Auth"): an HS256 JWT {sub, exp} signed with SECRET_KEY
// that is valid only while Redis DB 0 holds `token:{jwt}`.
import { errors as joseErrors, jwtVerify, SignJWT } from "jose";
import type { GraphQLError } from "graphql";
import type { Config } from "../config.js";
import type { AuthenticatedContext, Context, Viewer } from "../context.js";
import { Forbidden, Unauthenticated, UpstreamUnavailable, errorMessage } from "../errors.js";
import type { Stores } from "../stores/index.js";
import { untilRevoked, type RevocationChecks } from "../live/revocation.js";

const secret = (config: Config) => new TextEncoder().encode(config.auth.secretKey);

export type Authentication = { viewer: Viewer; error: null } | { viewer: null; error: GraphQLError | null };

/** Reads `Bearer <jwt>` from an Authorization value (HTTP header or graphql-ws connectionParams). */
function bearerToken(authorization: unknown): string | null {
  if (typeof authorization !== "string") return null;
  const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
  return match ? match[1]! : null;
}

/** A bearer token whose signature and claims are good; whether it is still registered is Redis's to say. */
export type Claims =
  { jwt: string; username: string; error: null } | { jwt: null; username: null; error: GraphQLError | null };

/**
 * Signature checks already passed, per secret: a signature is a pure function of the token and the
 * key, so it is checked once per token, while expiry (here) and registration (Redis, every request)
 * are checked every time. Bounded: the oldest entries go first past VERIFIED_TOKENS_MAX.
 */
const verifiedTokens = new WeakMap<Config, Map<string, { username: string; exp: number }>>();
const VERIFIED_TOKENS_MAX = 10_000;

/** Checks the bearer token's signature and claims, without any I/O. */
export async function verifyBearer(config: Config, authorization: unknown): Promise<Claims> {
  const none = { jwt: null, username: null } as const;
  if (authorization === undefined || authorization === null || authorization === "") return { ...none, error: null };
  const jwt = bearerToken(authorization);
  if (!jwt) return { ...none, error: new Unauthenticated("the Authorization value must be `Bearer <token>`") };
  let verified = verifiedTokens.get(config);
  if (!verified) verifiedTokens.set(config, (verified = new Map()));
  const known = verified.get(jwt);
  if (known && known.exp * 1000 > Date.now()) return { jwt, username: known.username, error: null };
  try {
    const { payload } = await jwtVerify(jwt, secret(config), { algorithms: [config.auth.algorithm] });
    if (typeof payload.sub !== "string" || payload.sub === "")
      throw new joseErrors.JWTClaimValidationFailed("missing sub", payload);
    if (typeof payload.exp !== "number") throw new joseErrors.JWTClaimValidationFailed("missing exp", payload);
    if (verified.size >= VERIFIED_TOKENS_MAX) verified.delete(verified.keys().next().value!);
    verified.set(jwt, { username: payload.sub, exp: payload.exp });
    return { jwt, username: payload.sub, error: null };
  } catch (error) {
    verified.delete(jwt);
    const reason = error instanceof joseErrors.JWTExpired ? "the token has expired" : "the token is not valid";
    return { ...none, error: new Unauthenticated(reason) };
  }
}

/** Verified claims become a viewer only while Redis DB 0 holds `token:{jwt}` (revocation is immediate). */
export async function checkRegistered(stores: Stores, claims: Claims): Promise<Authentication> {
  if (claims.jwt === null) return { viewer: null, error: claims.error };
  let registered: boolean;
  try {
    registered = await stores.redis.tokens.isRegistered(claims.jwt);
  } catch (error) {
    return {
      viewer: null,
      error: new UpstreamUnavailable("redis", errorMessage(error)),
    };
  }
  if (!registered)
    return { viewer: null, error: new Unauthenticated("the token is not registered or has been revoked") };
  return { viewer: { username: claims.username, token: claims.jwt }, error: null };
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

/** A real revoke, which LAYRA's logout lacks: the token stops working at once, its open streams here too. */
export async function revokeToken(
  { stores, live }: Pick<Context, "stores" | "live">,
  viewer: Viewer,
): Promise<boolean> {
  const revoked = await stores.redis.tokens.revoke(viewer.token);
  live.tokenChecks.revoked(viewer.token);
  return revoked;
}

/**
 * A stream that ends with UNAUTHENTICATED once the caller's token is no longer registered (`logout`
 * on any replica, or its TTL): checked every TOKEN_RECHECK_MS, once per token for all its streams.
 */
export function whileTokenValid<T>(
  tokenChecks: RevocationChecks,
  viewer: Viewer,
  stream: AsyncIterable<T>,
): AsyncIterable<T> {
  return untilRevoked(
    stream,
    tokenChecks,
    viewer.token,
    () => new Unauthenticated("the token has been revoked: the stream ended"),
  );
}

/** Operations on every user's data are for the usernames listed in OPERATOR_USERNAMES. */
export function requireOperator(context: AuthenticatedContext, what: string): void {
  if (!context.config.operatorUsernames.has(context.viewer.username)) {
    throw new Forbidden(`${what} needs an operator username (OPERATOR_USERNAMES)`);
  }
}

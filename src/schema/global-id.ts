// Opaque Relay ids: base64url of `Type:layraId`. LAYRA's own ids stay available as plain fields.
import { BadUserInput } from "../errors.js";

export function encodeGlobalId(typename: string, id: string | number | bigint): string {
  return Buffer.from(`${typename}:${id}`, "utf8").toString("base64url");
}

export function decodeGlobalId(globalId: string): { typename: string; id: string } {
  const decoded = /^[A-Za-z0-9_-]+$/.test(globalId) ? Buffer.from(globalId, "base64url").toString("utf8") : "";
  const separator = decoded.indexOf(":");
  if (separator < 1 || separator === decoded.length - 1)
    throw new BadUserInput("id", `${JSON.stringify(globalId)} is not a valid global id`);
  return { typename: decoded.slice(0, separator), id: decoded.slice(separator + 1) };
}

/** Node types are told apart by the LAYRA id fields their documents carry. */
export function hasKeys(value: unknown, ...keys: string[]): boolean {
  return typeof value === "object" && value !== null && keys.every((key) => key in value);
}

// The scalars the builder declares: DateTime (ISO 8601 in UTC) and JSON (any JSON value).
import { GraphQLError, Kind, type ValueNode } from "graphql";
import { builder } from "./builder.js";
import { requireFiniteJson } from "../lib/input.js";

function parseDateTime(value: unknown): Date {
  const date = typeof value === "string" ? new Date(value) : null;
  if (!date || Number.isNaN(date.getTime())) throw new GraphQLError("DateTime must be an ISO 8601 date-time string");
  return date;
}

builder.scalarType("DateTime", {
  description: "An instant, as an ISO 8601 string in UTC (e.g. 2025-09-20T13:34:46.123Z).",
  serialize: (value) => {
    const date = value instanceof Date ? value : new Date(value);
    if (Number.isNaN(date.getTime())) throw new GraphQLError("DateTime cannot represent an invalid date");
    return date.toISOString();
  },
  parseValue: parseDateTime,
  parseLiteral: (ast) => parseDateTime(ast.kind === Kind.STRING ? ast.value : null),
});

function literalValue(ast: ValueNode, variables?: Record<string, unknown> | null): unknown {
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
    case Kind.ENUM:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return ast.values.map((item) => literalValue(item, variables));
    case Kind.OBJECT:
      return Object.fromEntries(ast.fields.map((field) => [field.name.value, literalValue(field.value, variables)]));
    case Kind.VARIABLE:
      return variables?.[ast.name.value];
  }
}

/** JSON input must be storable: finite numbers (`1e400` parses to Infinity), bounded depth. */
function parseJson(value: unknown): unknown {
  requireFiniteJson("JSON", value);
  return value;
}

builder.scalarType("JSON", {
  description: "Any JSON value, as LAYRA stores it (workflow nodes, edges, custom nodes).",
  serialize: (value) => value,
  parseValue: parseJson,
  parseLiteral: (ast, variables) => parseJson(literalValue(ast, variables)),
});

import { GraphQLError, Kind } from "graphql";
import { builder } from "./builder.js";

builder.scalarType("DateTime", {
  description: "An instant in ISO 8601 UTC, e.g. 2025-09-20T13:34:46.123Z (LAYRA stores BSON Dates).",
  serialize: (value) => (value as Date).toISOString(),
  parseValue: (value) => {
    const date = typeof value === "string" ? new Date(value) : new Date(Number.NaN);
    if (Number.isNaN(date.getTime())) throw new GraphQLError("DateTime must be an ISO 8601 string");
    return date;
  },
});

builder.scalarType("JSON", {
  description: "Any JSON value, as LAYRA stores it (workflow nodes, edges, custom nodes).",
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: function parse(node): unknown {
    switch (node.kind) {
      case Kind.STRING:
      case Kind.BOOLEAN:
        return node.value;
      case Kind.INT:
      case Kind.FLOAT:
        return Number(node.value);
      case Kind.NULL:
        return null;
      case Kind.LIST:
        return node.values.map((value) => parse(value));
      case Kind.OBJECT:
        return Object.fromEntries(node.fields.map((field) => [field.name.value, parse(field.value)]));
      default:
        throw new GraphQLError("JSON literals cannot contain variables");
    }
  },
});

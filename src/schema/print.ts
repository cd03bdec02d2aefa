import { lexicographicSortSchema, printSchema } from "graphql";
import { schema } from "./index.js";

/** The SDL committed as schema.graphql. */
export function printSchemaFile(): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}

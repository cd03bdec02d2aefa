// Prints the Pothos schema to schema.graphql (committed; test/schema.test.ts fails when it drifts).
import { writeFileSync } from "node:fs";
import { printSchemaFile } from "../src/schema/print.js";

writeFileSync(new URL("../schema.graphql", import.meta.url), printSchemaFile());
console.log("schema.graphql written");

// Loads every type module, then builds the schema. Nothing else lives here.
import { builder } from "./builder.js";
import "./health.js";

export const schema = builder.toSchema({ sortSchema: true });

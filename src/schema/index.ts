// Loads every type module, then builds the schema. Nothing else lives here.
import { builder } from "./builder.js";
import "./scalars.js";
import "./health.js";
import "./progress.js";

export const schema = builder.toSchema({ sortSchema: true });

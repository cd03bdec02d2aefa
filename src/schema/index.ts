// Loads every type module, then builds the schema. Nothing else lives here.
import { builder } from "./builder.js";
import "./scalars.js";
import "./health.js";
import "./auth.js";
import "./knowledge-base.js";
import "./file.js";
import "./model-config.js";
import "./turn.js";
import "./conversation.js";
import "./workflow.js";
import "./viewer.js";
import "./progress.js";
import "./knowledge-base-mutations.js";
import "./model-config-mutations.js";
import "./conversation-mutations.js";
import "./workflow-mutations.js";
import "./store-stats.js";
import "./search.js";
import "./upload.js";
import "./ask.js";

export const schema = builder.toSchema({ sortSchema: true });

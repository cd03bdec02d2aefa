// Side-effect import for the commands that work on a running deployment's stores (dev:token and
// the operator commands): the running local stack's addresses first, then `.env`.
import { DOT_ENV, LOCAL_STACK_ENV, loadEnvFiles } from "./env-files.js";

loadEnvFiles([LOCAL_STACK_ENV, DOT_ENV]);

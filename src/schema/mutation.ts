import type { Context } from "../context.js";
import { typedError } from "../errors.js";

/** Wraps a mutation resolver so store driver errors reach the client as typed errors (errors.ts typedError). */
export const typedResolve =
  <P, A, R>(resolve: (parent: P, args: A, context: Context) => Promise<R>) =>
  async (parent: P, args: A, context: Context): Promise<R> => {
    try {
      return await resolve(parent, args, context);
    } catch (error) {
      throw typedError(error);
    }
  };

// Complete, retryable cascades: a cascade is a list of idempotent steps run in order; the steps
// delete dependent data before the document that names it, so when a store fails part-way the same
// operation, run again, finds what is left and finishes (docs/architecture.md, "Cascades and locks").
import { CascadeIncomplete, Conflict, NotFound } from "../errors.js";

export interface CascadeStep {
  /** What the step deletes, as reported in `extensions.remaining` when it (or a later step) is left. */
  name: string;
  run(): Promise<unknown>;
}

/** Runs the steps in order; a failure reports the failed step and every later one as left. */
export async function runCascade(what: string, steps: CascadeStep[]): Promise<void> {
  for (const [index, step] of steps.entries()) {
    try {
      await step.run();
    } catch (error) {
      if (error instanceof Conflict || error instanceof NotFound) throw error;
      const later = steps.slice(index + 1).map((s) => s.name);
      // A nested cascade (a conversation's temp knowledge base) reports its own remaining steps.
      const left = error instanceof CascadeIncomplete ? error.remaining.map((r) => `${step.name}: ${r}`) : [step.name];
      throw new CascadeIncomplete(what, [...left, ...later], error);
    }
  }
}

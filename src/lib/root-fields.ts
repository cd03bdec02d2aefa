import {
  Kind,
  type DocumentNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from "graphql";

/**
 * The names (not aliases) of the fields an operation selects at its root, in order, through inline
 * fragments and fragment spreads at any depth: what the operation asks of the Query, Mutation or
 * Subscription type.
 */
export function rootFieldNames(document: DocumentNode, operation: OperationDefinitionNode): string[] {
  const names: string[] = [];
  // A fragment is walked once, even if a cycle slipped past validation; most operations spread none.
  let spread: Set<string> | null = null;
  const walk = (selections: SelectionSetNode) => {
    for (const selection of selections.selections) {
      if (selection.kind === Kind.FIELD) names.push(selection.name.value);
      else if (selection.kind === Kind.INLINE_FRAGMENT) walk(selection.selectionSet);
      else if (!spread?.has(selection.name.value)) {
        (spread ??= new Set()).add(selection.name.value);
        const fragment = document.definitions.find(
          (definition): definition is FragmentDefinitionNode =>
            definition.kind === Kind.FRAGMENT_DEFINITION && definition.name.value === selection.name.value,
        );
        if (fragment) walk(fragment.selectionSet);
      }
    }
  };
  walk(operation.selectionSet);
  return names;
}

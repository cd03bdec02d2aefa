// ESLint decides correctness; Prettier (.prettierrc.json) decides formatting.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** Matches a call whose specifier is computed: neither a string nor a template without substitutions. */
const computedSpecifier = (argument) =>
  `:not([${argument}.type='Literal']):not([${argument}.type='TemplateLiteral'][${argument}.expressions.length=0])`;

export default tseslint.config(
  {
    ignores: [
      "node_modules/",
      "dist/",
      ".stack/",
      "**/*.generated.ts",
      "web/node_modules/",
      "web/dist/",
      "web/src/gql/",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" },
      ],
    },
  },
  {
    // dependency-cruiser (.dependency-cruiser.mjs) reads literal specifiers only, so src/ uses no other kind.
    files: ["src/**"],
    rules: {
      "no-restricted-syntax": [
        "error",
        { selector: `ImportExpression${computedSpecifier("source")}`, message: "Import a literal specifier." },
        {
          selector: `CallExpression[callee.name='require']${computedSpecifier("arguments.0")}`,
          message: "Require a literal specifier.",
        },
      ],
    },
  },
);

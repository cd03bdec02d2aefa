// ESLint decides correctness; Prettier (.prettierrc.json) decides formatting.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** Matches a call whose specifier is computed: neither a string nor a template without substitutions. */
const computedSpecifier = (argument) =>
  `:not([${argument}.type='Literal']):not([${argument}.type='TemplateLiteral'][${argument}.expressions.length=0])`;

/** Type-checked findings in files being edited elsewhere in this step: their owners fix them, then the line goes. */
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
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" },
      ],
      // node:test's test() and describe() return promises that the runner itself awaits.
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          allowForKnownSafeCalls: [
            { from: "package", package: "node:test", name: ["test", "describe", "it", "suite"] },
          ],
        },
      ],
      // An async iterator's throw() passes on whatever it was given.
      "@typescript-eslint/prefer-promise-reject-errors": ["error", { allowThrowingUnknown: true }],
      // `any` comes from JSON bodies and envelop's hook arguments: checking each use would take a cast per read.
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      // Its findings are thrown values and JSON fields (unknown, narrowed to {}) turned into text on purpose.
      "@typescript-eslint/no-base-to-string": "off",
      // Closures typed as methods (store handles, envelop payloads) look to it like methods that need `this`.
      "@typescript-eslint/unbound-method": "off",
      // `async` here gives a Promise-typed slot its type (DataLoader batches, default callbacks), not a missed await.
      "@typescript-eslint/require-await": "off",
    },
  },
  {
    // An async listener in a bench or a test may reject: node then fails the run, which is what it should do.
    files: ["bench/**", "test/**"],
    rules: { "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { arguments: false } }] },
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
  {
    // The config files are plain JavaScript outside tsconfig.json; web/ takes its types from generated code.
    files: ["**/*.{js,mjs,cjs}", "web/**"],
    ...tseslint.configs.disableTypeChecked,
  },
);

// Import rules for src/ (docs/architecture.md, "The flow of a request"), checked by `npm run lint`. The rule that
// every import specifier is a literal lives in eslint.config.js: dependency-cruiser skips computed ones.

/** The one-way layer order, highest first: a layer may import the layers after it, never those before. */
const layers = [
  ["main", "^src/main\\.ts$"],
  ["app", "^src/app\\.ts$"],
  ["server", "^src/server/"],
  ["plugins", "^src/plugins/"],
  ["schema", "^src/schema/"],
  ["resolvers", "^src/resolvers/"],
  ["live", "^src/live/"],
  ["loaders", "^src/loaders/"],
  ["stores", "^src/stores/"],
  ["base", "^src/(lib/|observability/|config\\.ts$|errors\\.ts$)"],
];

/** Entry points and operator tools: outside the chain, they may import resolvers and what lies below. */
const tools = "^src/(worker\\.ts|worker-app\\.ts|cli/|ops/)";

const layerRules = layers.slice(1).map(([name, path], index) => ({
  name: `${name}-imports-no-higher-layer`,
  comment: `src/ layers import downwards only; ${name} sits below ${layers[index][0]}.`,
  severity: "error",
  from: { path },
  to: {
    path: [...layers.slice(0, index + 1).map(([, higher]) => higher), tools],
  },
}));

/** @type {import("dependency-cruiser").IConfiguration} */
export default {
  forbidden: [
    ...layerRules,
    {
      name: "tools-import-resolvers-and-below",
      comment:
        "Workers, CLIs and operator tools reuse the logic, not the GraphQL server or the schema; the worker serves the same operational routes.",
      severity: "error",
      from: { path: tools },
      to: {
        path: layers
          .slice(
            0,
            layers.findIndex(([name]) => name === "resolvers"),
          )
          .map(([, path]) => path),
        pathNot: "^src/server/(operational-routes|http)\\.ts$",
      },
    },
    {
      name: "context-is-types-only",
      comment:
        "src/context.ts describes the request context for every layer, so it holds types and is imported as types.",
      severity: "error",
      from: {},
      to: { path: "^src/context\\.ts$", dependencyTypesNot: ["type-only"] },
    },
    {
      name: "context-imports-types-only",
      comment: "src/context.ts names types from several layers; a run-time import would tie them together.",
      severity: "error",
      from: { path: "^src/context\\.ts$" },
      to: { dependencyTypesNot: ["type-only"] },
    },
    {
      name: "src-stays-in-src",
      comment: "dist/ must run alone: src/ never imports dev/, test/, scripts/, bench/ or any other file outside src/.",
      severity: "error",
      from: { path: "^src/" },
      to: { pathNot: ["^src/", "^node_modules/"], dependencyTypesNot: ["core"] },
    },
    {
      name: "runtime-packages-are-dependencies",
      comment: "`npm ci --omit=dev` must be enough to run dist/; type-only imports may use dev packages.",
      severity: "error",
      from: { path: "^src/" },
      to: {
        dependencyTypes: ["npm-dev", "npm-optional", "npm-peer", "npm-bundled", "npm-no-pkg", "npm-unknown"],
        dependencyTypesNot: ["type-only"],
      },
    },
    {
      name: "imports-resolve",
      comment: "An import that does not resolve to a file or package would fail at run time.",
      severity: "error",
      from: { path: "^src/" },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
    doNotFollow: { path: "node_modules" },
    // Packages resolve through their "exports" map, as Node resolves them at run time.
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default"] },
  },
};

// GraphQL Code Generator: typed documents for the operations in src/**/*.graphql, checked against the
// gateway's committed schema, and the persisted-documents manifest ({hash: query}) that the gateway's
// PERSISTED_OPERATIONS_FILE accepts as is. Output goes to src/gql/ (git-ignored; `npm run codegen`).
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "../schema.graphql",
  documents: ["src/**/*.graphql"],
  generates: {
    "src/gql/": {
      preset: "client",
      presetConfig: {
        fragmentMasking: false,
        // sha256 of each printed operation, embedded as `__meta__.hash` in its document.
        persistedDocuments: true,
      },
      config: {
        // Documents as strings (no graphql-js in the bundle); the client sends the text or the hash.
        documentMode: "string",
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { DateTime: "string", JSON: "unknown", Upload: "File" },
      },
    },
  },
};

export default config;

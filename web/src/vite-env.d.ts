/// <reference types="vite/client" />

// The build-time settings the app reads (`VITE_*` variables at `vite build` or `npm run dev`).
interface ImportMetaEnv {
  /** "true": send each operation's hash (`documentId`) instead of its text. */
  readonly VITE_PERSISTED_DOCUMENTS?: string;
  /** The login form's default GraphQL endpoint (`/graphql` otherwise). */
  readonly VITE_GRAPHQL_ENDPOINT?: string;
}

// `npm run dev` serves the app on http://localhost:5173 and forwards /graphql (HTTP and WebSocket)
// to the gateway at LAYRA_GATEWAY (default http://127.0.0.1:4000), so no CORS setting is needed.
import { defineConfig } from "vite";

export default defineConfig({
  server: {
    proxy: {
      "/graphql": { target: process.env.LAYRA_GATEWAY ?? "http://127.0.0.1:4000", ws: true },
    },
  },
});

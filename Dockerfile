# The production image: compile in a build stage, run the compiled code with production
# dependencies only. Node 24 is the maintained LTS line (Node 20 reached its end of life in April
# 2026); the tag is pinned so a rebuild gets the same runtime. docs/operations.md explains running it.

# Build: every dependency (TypeScript included), then src/ -> dist/.
FROM node:24.21.0-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime: production dependencies and dist/ only; tini as PID 1 forwards SIGTERM to node, so
# app.stop() closes connections and stores before the container exits.
FROM node:24.21.0-trixie-slim AS runtime
# poppler-utils: pdftoppm renders PDF pages for the ingestion worker (node dist/worker.js, same
# image). LibreOffice for office formats is optional: add libreoffice-core here if needed.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini poppler-utils \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
    PORT=4000 \
    NODE_OPTIONS=--enable-source-maps
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The code stays owned by root and read-only for the process; it runs as the image's `node` user.
USER node
EXPOSE 4000
# Liveness on whatever PORT the container is given (docker-compose.yml checks /readiness instead).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/main.js"]

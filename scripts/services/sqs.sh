# shellcheck shell=bash
# SQS emulator: moto server (PyPI moto[server] 5.2.5), on 127.0.0.1:19324.
#
# Checked with scripts/check-sqs-emulator.mjs (@aws-sdk/client-sqs 3.x, AWS JSON
# protocol) against moto 5.2.5 and ElasticMQ 1.7.1: create a queue, send 3,
# receive 1 without deleting (in flight), send 2 with DelaySeconds=60. Both
# read ApproximateNumberOfMessages / ...NotVisible / ...Delayed = 2 / 1 / 2,
# both return to 4 / 0 / 0 once short delays and visibility timeouts run out,
# both count FIFO queues and queue-level DelaySeconds right, and both answer
# GetQueueAttributes / GetQueueUrl on a missing queue with an error the SDK
# names QueueDoesNotExist (HTTP 400). moto is the more faithful of the two:
#  - its missing-queue error carries real SQS's query-compatible code
#    (x-amzn-query-error: AWS.SimpleQueueService.NonExistentQueue;Sender), so
#    err.Code is 'AWS.SimpleQueueService.NonExistentQueue' as with real SQS;
#    ElasticMQ's gives err.Code 'com.amazonaws.sqs#QueueDoesNotExist';
#  - it rejects an unknown attribute name with InvalidAttributeName, as real
#    SQS does; ElasticMQ ignores it;
#  - invalid parameters come back as InvalidParameterValue, as real SQS does.
# Both resolve a queue by the last path segment of the QueueUrl, whatever its
# host. moto's account id in queue URLs is 123456789012. Neither models real
# SQS's eventual consistency of the counts (up to about a minute).
# SERVICES_SQS=elasticmq runs ElasticMQ (Maven Central) instead.

# shellcheck source=scripts/services/lib.sh
[ -n "${SERVICES_LIB_LOADED:-}" ] || . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SQS_PORT="${SERVICES_SQS_PORT:-19324}"
SQS_EMULATOR="${SERVICES_SQS:-moto}"
MOTO_VERSION="${SERVICES_MOTO_VERSION:-5.2.5}"
ELASTICMQ_VERSION="${SERVICES_ELASTICMQ_VERSION:-1.7.1}"
MOTO_HOME="$CACHE_DIR/moto-$MOTO_VERSION"
ELASTICMQ_HOME="$CACHE_DIR/elasticmq-$ELASTICMQ_VERSION"

SQS_DIR="$SERVICES_DIR/sqs"
SQS_PIDFILE="$SQS_DIR/sqs.pid"
SQS_LOG="$SQS_DIR/sqs.log"
pid_pattern sqs.pid 'moto_server\|elasticmq'

sqs_require_known_emulator() {
  case "$SQS_EMULATOR" in
    moto | elasticmq) ;;
    *) die "SERVICES_SQS must be moto or elasticmq, not '$SQS_EMULATOR'" ;;
  esac
}

# moto runs from a venv (pip_venv_install), and so does scripts/tools.sh's hadolint after it:
# Debian's python3 has no venv without python3-venv (found by review: a fresh machine stopped there).
sqs_packages() {
  command -v python3 >/dev/null 2>&1 || echo python3
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || echo python3-venv
}
# (runs in the foreground before any install: the place to refuse an unknown emulator)
sqs_install_needs() {
  sqs_require_known_emulator
  if [ "$SQS_EMULATOR" = elasticmq ]; then java_build_packages; fi
}
sqs_install() {
  case "$SQS_EMULATOR" in
    moto) pip_venv_install "$MOTO_HOME" "moto[server]==$MOTO_VERSION" ;;
    elasticmq) maven_fetch "$ELASTICMQ_HOME" elasticmq "$(maven_dep org.elasticmq elasticmq-server_2.13 "$ELASTICMQ_VERSION")" ;;
  esac
}

sqs_env() { echo "SQS_ENDPOINT=http://127.0.0.1:$SQS_PORT"; }
sqs_describe() { echo "http://127.0.0.1:$SQS_PORT ($(cat "$SQS_DIR/emulator" 2>/dev/null || echo "$SQS_EMULATOR"))"; }
# A signed ListQueues with the AWS SDK (scripts/probes/sqs.mjs).
sqs_ready() { probe sqs "http://127.0.0.1:$SQS_PORT" 5000; }
sqs_alive() { pid_alive "$SQS_PIDFILE"; }

sqs_start() {
  if pid_alive "$SQS_PIDFILE"; then
    local running; running="$(cat "$SQS_DIR/emulator" 2>/dev/null || echo '?')"
    [ "$running" = "$SQS_EMULATOR" ] || log "sqs: note: $running is running, not $SQS_EMULATOR (down sqs first to switch)"
    attach_running sqs "$SQS_PIDFILE" "$SQS_LOG" sqs_ready "$running"
    return
  fi
  sqs_require_known_emulator
  require_free_port "$SQS_PORT" sqs
  mkdir -p "$SQS_DIR"
  : >"$SQS_LOG"
  echo "$SQS_EMULATOR" >"$SQS_DIR/emulator"
  case "$SQS_EMULATOR" in
    moto)
      [ -f "$MOTO_HOME/.complete" ] || die "sqs: moto missing in $MOTO_HOME"
      log "sqs: starting moto $MOTO_VERSION on 127.0.0.1:$SQS_PORT"
      spawn "$SQS_PIDFILE" "$SQS_LOG" "$SQS_DIR" \
        env AWS_DEFAULT_REGION=us-east-1 "$MOTO_HOME/venv/bin/moto_server" -H 127.0.0.1 -p "$SQS_PORT"
      ;;
    elasticmq)
      [ -f "$ELASTICMQ_HOME/.complete" ] || die "sqs: ElasticMQ jars missing in $ELASTICMQ_HOME"
      cat >"$SQS_DIR/elasticmq.conf" <<CONF
include classpath("application.conf")
node-address {
  protocol = http
  host = 127.0.0.1
  port = $SQS_PORT
  context-path = ""
}
rest-sqs {
  enabled = true
  bind-port = $SQS_PORT
  bind-hostname = "127.0.0.1"
  sqs-limits = strict
}
rest-stats.enabled = false
generate-node-address = false
CONF
      log "sqs: starting ElasticMQ $ELASTICMQ_VERSION on 127.0.0.1:$SQS_PORT"
      spawn "$SQS_PIDFILE" "$SQS_LOG" "$SQS_DIR" \
        java -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        -Dconfig.file="$SQS_DIR/elasticmq.conf" -cp "$ELASTICMQ_HOME/jars/*" org.elasticmq.server.Main
      ;;
  esac
  wait_ready sqs "$SQS_PIDFILE" "$SQS_LOG" "$TIMEOUT" sqs_ready
}

sqs_stop() {
  stop_pid sqs "$SQS_PIDFILE" 15
}

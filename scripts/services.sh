#!/usr/bin/env bash
# Native test bed: real brokers on loopback, without Docker.
#
#   scripts/services.sh up     [service...]   install what is missing, start, wait, print KEY=value lines
#   scripts/services.sh down   [--purge] [service...]   stop what `up` started (by pid); --purge also deletes data
#   scripts/services.sh status [service...]   one line per service (running / starting / stopped, or
#                                             foreign: answering, but not started from this SERVICES_DIR); exits 0
#
# Services: rabbitmq kafka sqs prometheus redis (default: all). `prometheus` includes the
# fake DCGM exporter (scripts/fake-dcgm-exporter.mjs) that it scrapes; `redis` is the
# scaler's shared state store (STATE_STORE_URL).
#
# `up` prints only KEY=value lines on stdout (all chatter goes to stderr), e.g.
#   eval "$(scripts/services.sh up)"
# and writes the lines of every running service to $SERVICES_DIR/env.
#
# Environment:
#   SERVICES_DIR         state (pids, logs, data, env)      default: <repo>/.services (git-ignored)
#   SERVICES_CACHE_DIR   downloads (jars, venv, pip cache)  default: ${XDG_CACHE_HOME:-$HOME/.cache}/keda-inference-scaler
#   SERVICES_SQS         moto (default) | elasticmq
#   SERVICES_NODE        node binary for the fake exporter and probes (default: node_modules/.bin/node, else node)
#   SERVICES_TIMEOUT     seconds to wait for each service to answer (default 120)
#   SERVICES_<NAME>_PORT ports: RABBITMQ=5673 RABBITMQ_MANAGEMENT=15673 RABBITMQ_DIST=25673
#                        KAFKA=19092 KAFKA_CONTROLLER=19093 KAFKA_SASL=19094 KAFKA_SSL=19095
#                        SQS=19324 PROMETHEUS=19090 DCGM=19400 REDIS=16379
#   SERVICES_KAFKA_JAVA_OPTS  JVM options for the Kafka broker
#
# Needs: Debian (apt-get, run as root or with sudo) for rabbitmq-server, prometheus and redis-server;
# Java 17 + Maven for Kafka (and ElasticMQ), openssl for its test certificates; Python 3
# with venv for moto; Node >= 20.
set -euo pipefail

ALL_SERVICES=(rabbitmq kafka sqs prometheus redis)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICES_DIR="${SERVICES_DIR:-$REPO_ROOT/.services}"
CACHE_DIR="${SERVICES_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/keda-inference-scaler}"
TIMEOUT="${SERVICES_TIMEOUT:-120}"

RABBITMQ_PORT="${SERVICES_RABBITMQ_PORT:-5673}"
RABBITMQ_MANAGEMENT_PORT="${SERVICES_RABBITMQ_MANAGEMENT_PORT:-15673}"
RABBITMQ_DIST_PORT="${SERVICES_RABBITMQ_DIST_PORT:-25673}"
RABBITMQ_NODE="${SERVICES_RABBITMQ_NODENAME:-kis-test@localhost}"
KAFKA_PORT="${SERVICES_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${SERVICES_KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_SASL_PORT="${SERVICES_KAFKA_SASL_PORT:-19094}"
KAFKA_SSL_PORT="${SERVICES_KAFKA_SSL_PORT:-19095}"
SQS_PORT="${SERVICES_SQS_PORT:-19324}"
PROMETHEUS_PORT="${SERVICES_PROMETHEUS_PORT:-19090}"
DCGM_PORT="${SERVICES_DCGM_PORT:-19400}"
REDIS_PORT="${SERVICES_REDIS_PORT:-16379}"

# Kafka 4.3.1: the newest line whose every artifact (kafka-tools included) Maven Central serves.
KAFKA_VERSION="${SERVICES_KAFKA_VERSION:-4.3.1}"
SLF4J_VERSION=2.0.17
SQS_EMULATOR="${SERVICES_SQS:-moto}"
MOTO_VERSION="${SERVICES_MOTO_VERSION:-5.2.5}"
ELASTICMQ_VERSION="${SERVICES_ELASTICMQ_VERSION:-1.7.1}"
KAFKA_JAVA_OPTS="${SERVICES_KAFKA_JAVA_OPTS:--Xms64m -Xmx512m -XX:MaxMetaspaceSize=256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}"

export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

log() { printf '[services] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------- helpers

SUDO=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); fi
fi

node_bin() {
  if [ -n "${SERVICES_NODE:-}" ]; then printf '%s\n' "$SERVICES_NODE"
  elif [ -x "$REPO_ROOT/node_modules/.bin/node" ]; then printf '%s\n' "$REPO_ROOT/node_modules/.bin/node"
  elif command -v node >/dev/null 2>&1; then command -v node
  else die "no node binary (install Node >= 20, or run npm ci)"; fi
}

# The pid in PIDFILE is alive and is still our process (not a pid reused after
# a reboot): its command line must name what we started.
pid_alive() { # pidfile
  [ -s "$1" ] || return 1
  local pid; pid="$(cat "$1" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  local pattern
  case "${1##*/}" in
    rabbitmq.pid) pattern=beam ;;
    kafka.pid) pattern=kafka.Kafka ;;
    sqs.pid) pattern='moto_server\|elasticmq' ;;
    prometheus.pid) pattern=prometheus ;;
    dcgm-exporter.pid) pattern=fake-dcgm-exporter ;;
    redis.pid) pattern=redis-server ;;
    *) return 0 ;;
  esac
  [ -r "/proc/$pid/cmdline" ] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$pattern"
}

port_open() { # port
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# A port we are about to listen on must be free: say who holds it if not.
require_free_port() { # port what
  if port_open "$1"; then
    local who=""
    command -v ss >/dev/null 2>&1 && who="$(ss -ltnpH "sport = :$1" 2>/dev/null | head -3)"
    die "$2: port 127.0.0.1:$1 is already in use by a process this script did not start${who:+: $who}. Stop it, or pick another port with the SERVICES_*_PORT variables."
  fi
}

log_tail() { # file [lines]
  if [ -s "$1" ]; then
    log "---- last ${2:-40} lines of $1 ----"
    tail -n "${2:-40}" "$1" | sed 's/^/    /' >&2
    log "----"
  else
    log "($1 is empty or missing)"
  fi
}

# Start a daemon detached from this shell (own session, no inherited fds) and
# record its pid. Usage: spawn PIDFILE LOGFILE WORKDIR cmd args...
spawn() {
  local pidfile="$1" logfile="$2" workdir="$3"; shift 3
  rm -f "$pidfile"
  (
    cd "$workdir"
    exec 9>&- 8>&- </dev/null >>"$logfile" 2>&1
    exec setsid bash -c 'echo $$ > "$0"; exec "$@"' "$pidfile" "$@"
  ) &
  local i
  for i in $(seq 50); do [ -s "$pidfile" ] && return 0; sleep 0.1; done
  die "could not start $1"
}

# Wait until `check` succeeds, the process dies, or the timeout passes.
wait_ready() { # name pidfile logfile timeout check...
  local name="$1" pidfile="$2" logfile="$3" limit="$4"; shift 4
  local deadline=$((SECONDS + limit))
  while :; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if ! pid_alive "$pidfile"; then
      log "$name: the process exited before it answered"
      log_tail "$logfile"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "$name: did not answer within ${limit}s"
      log_tail "$logfile"
      return 1
    fi
    sleep 0.5
  done
}

stop_pid() { # name pidfile [grace]
  local name="$1" pidfile="$2" grace="${3:-20}"
  pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  local pid; pid="$(cat "$pidfile")"
  log "$name: stopping (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + grace))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "$name: pid $pid still running after ${grace}s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$pidfile"
}

wait_pid_exit() { # pid seconds
  local deadline=$((SECONDS + $2))
  while kill -0 "$1" 2>/dev/null; do
    ((SECONDS >= deadline)) && return 1
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------- installs

POLICY_RC_D=/usr/sbin/policy-rc.d
POLICY_RC_D_OURS=0
cleanup_policy_rc_d() {
  if [ "$POLICY_RC_D_OURS" = 1 ]; then "${SUDO[@]}" rm -f "$POLICY_RC_D"; POLICY_RC_D_OURS=0; fi
}
trap cleanup_policy_rc_d EXIT

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

apt_install() { # packages...
  local missing=() p
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install ${missing[*]} by hand"
  if [ "$(id -u)" != 0 ] && ((${#SUDO[@]} == 0)); then die "need root (or sudo) to install ${missing[*]}"; fi
  log "apt: installing ${missing[*]}"
  # Keep the packages' own daemons (system RabbitMQ node, Prometheus, Redis) from starting.
  if [ ! -e "$POLICY_RC_D" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY_RC_D" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY_RC_D"
    POLICY_RC_D_OURS=1
    trap cleanup_policy_rc_d EXIT # also when this runs in a background subshell
  fi
  local apt=("${SUDO[@]}" apt-get -y -q -o DPkg::Lock::Timeout=300)
  if [ -z "$(apt-cache policy "${missing[0]}" 2>/dev/null | awk '/Candidate:/ {print $2}' | grep -v '(none)')" ]; then
    "${apt[@]}" update >&2 || die "apt-get update failed"
  fi
  if ! "${apt[@]}" install --no-install-recommends "${missing[@]}" >&2; then
    log "apt: install failed; apt-get update and retry"
    "${apt[@]}" update >&2 || die "apt-get update failed"
    "${apt[@]}" install --no-install-recommends "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
  fi
  cleanup_policy_rc_d
  # On a machine that runs systemd, make sure the packages' own services stay off.
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    for p in "${missing[@]}"; do
      case "$p" in rabbitmq-server|prometheus|redis-server)
        "${SUDO[@]}" systemctl disable --now "$p" >/dev/null 2>&1 || true ;;
      esac
    done
  fi
}

# mvn copy-dependencies of a generated pom into $dir/jars; $dir/.complete marks success.
maven_fetch() { # dir name dependency-xml
  local dir="$1" name="$2" deps="$3"
  [ -f "$dir/.complete" ] && return 0
  command -v mvn >/dev/null 2>&1 || die "mvn not found (apt-get install maven)"
  mkdir -p "$dir"
  (
    flock 8
    [ -f "$dir/.complete" ] && exit 0
    log "maven: fetching $name into $dir"
    cat >"$dir/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.keda-inference-scaler</groupId>
  <artifactId>$name-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
$deps
  </dependencies>
</project>
EOF
    rm -rf "$dir/jars"
    if ! (cd "$dir" && mvn -B -q -ntp dependency:copy-dependencies -DoutputDirectory=jars -DincludeScope=runtime </dev/null >"$dir/mvn.log" 2>&1); then
      log "maven: fetching $name failed"
      log_tail "$dir/mvn.log"
      exit 1
    fi
    touch "$dir/.complete"
  ) 8>"$dir/.lock"
}

dep() { printf '    <dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>\n' "$1" "$2" "$3"; }

KAFKA_HOME="$CACHE_DIR/kafka-$KAFKA_VERSION"
ELASTICMQ_HOME="$CACHE_DIR/elasticmq-$ELASTICMQ_VERSION"
MOTO_HOME="$CACHE_DIR/moto-$MOTO_VERSION"

install_kafka() {
  # slf4j-api 2.x next to slf4j-simple: Kafka pulls slf4j-api 1.7, which would
  # not find the 2.x backend and log nothing.
  maven_fetch "$KAFKA_HOME" kafka "$(dep org.apache.kafka kafka_2.13 "$KAFKA_VERSION")
$(dep org.apache.kafka kafka-tools "$KAFKA_VERSION")
$(dep org.slf4j slf4j-api "$SLF4J_VERSION")
$(dep org.slf4j slf4j-simple "$SLF4J_VERSION")"
}

install_elasticmq() {
  maven_fetch "$ELASTICMQ_HOME" elasticmq "$(dep org.elasticmq elasticmq-server_2.13 "$ELASTICMQ_VERSION")"
}

install_moto() {
  [ -f "$MOTO_HOME/.complete" ] && return 0
  command -v python3 >/dev/null 2>&1 || die "python3 not found"
  mkdir -p "$MOTO_HOME"
  (
    flock 8
    [ -f "$MOTO_HOME/.complete" ] && exit 0
    log "pip: installing moto[server]==$MOTO_VERSION into $MOTO_HOME/venv"
    rm -rf "$MOTO_HOME/venv"
    if ! python3 -m venv "$MOTO_HOME/venv" >"$MOTO_HOME/pip.log" 2>&1; then
      log "python3 -m venv failed (Debian: apt-get install python3-venv)"; log_tail "$MOTO_HOME/pip.log"; exit 1
    fi
    if ! "$MOTO_HOME/venv/bin/pip" install -q --cache-dir "$CACHE_DIR/pip" "moto[server]==$MOTO_VERSION" </dev/null >>"$MOTO_HOME/pip.log" 2>&1; then
      log "pip install moto failed"; log_tail "$MOTO_HOME/pip.log"; exit 1
    fi
    touch "$MOTO_HOME/.complete"
  ) 8>"$MOTO_HOME/.lock"
}

install_for() { # services...
  local apt_pkgs=() s java_needed=0
  for s in "$@"; do
    case "$s" in
      rabbitmq) apt_pkgs+=(rabbitmq-server) ;;
      prometheus) apt_pkgs+=(prometheus) ;;
      redis) apt_pkgs+=(redis-server) ;;
      kafka) java_needed=1; command -v openssl >/dev/null 2>&1 || apt_pkgs+=(openssl) ;;
      sqs) [ "$SQS_EMULATOR" = elasticmq ] && java_needed=1 ;;
    esac
  done
  command -v curl >/dev/null 2>&1 || apt_pkgs+=(curl ca-certificates)
  command -v setsid >/dev/null 2>&1 || apt_pkgs+=(util-linux)
  local apt_first=0
  if ((java_needed)); then
    command -v java >/dev/null 2>&1 || { apt_pkgs+=(openjdk-17-jre-headless); apt_first=1; }
    command -v mvn >/dev/null 2>&1 || { apt_pkgs+=(maven); apt_first=1; }
  fi
  if ((apt_first)); then apt_install "${apt_pkgs[@]}"; apt_pkgs=(); fi

  # apt and the Maven/pip downloads run side by side.
  local pids=() names=() failed=0 i
  if ((${#apt_pkgs[@]})); then apt_install "${apt_pkgs[@]}" & pids+=($!); names+=(apt); fi
  for s in "$@"; do
    case "$s" in
      kafka) install_kafka & pids+=($!); names+=(kafka) ;;
      sqs)
        case "$SQS_EMULATOR" in
          moto) install_moto & pids+=($!); names+=(moto) ;;
          elasticmq) install_elasticmq & pids+=($!); names+=(elasticmq) ;;
          *) die "SERVICES_SQS must be moto or elasticmq, not '$SQS_EMULATOR'" ;;
        esac ;;
    esac
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { log "install of ${names[$i]} failed"; failed=1; }
  done
  ((failed == 0)) || die "installation failed"
}

# ---------------------------------------------------------------------------- rabbitmq
#
# Our own node (not the Debian system one) on 5673 / 15673 / dist 25673, all
# state under $SERVICES_DIR/rabbitmq. HOME is there too, so the Erlang cookie
# that rabbitmqctl reads is the node's.

RMQ_DIR="$SERVICES_DIR/rabbitmq"
RMQ_PIDFILE="$RMQ_DIR/rabbitmq.pid"
RMQ_LOG="$RMQ_DIR/log/$RABBITMQ_NODE.log"
RMQ_BIN=/usr/lib/rabbitmq/bin

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

rabbitmq_lines() {
  echo "RABBITMQ_URL=amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT"
  echo "RABBITMQ_MANAGEMENT_URL=http://guest:guest@127.0.0.1:$RABBITMQ_MANAGEMENT_PORT"
}
rabbitmq_answers() {
  port_open "$RABBITMQ_PORT" &&
    curl -fsS -m 5 -u guest:guest -o /dev/null "http://127.0.0.1:$RABBITMQ_MANAGEMENT_PORT/api/overview"
}
rabbitmq_alive() { pid_alive "$RMQ_PIDFILE"; }

rabbitmq_up() {
  if pid_alive "$RMQ_PIDFILE"; then
    if rabbitmq_answers; then log "rabbitmq: already running (pid $(cat "$RMQ_PIDFILE"))"; return 0; fi
    log "rabbitmq: pid $(cat "$RMQ_PIDFILE") alive but not answering yet; waiting"
    wait_ready rabbitmq "$RMQ_PIDFILE" "$RMQ_LOG" "$TIMEOUT" rabbitmq_answers
    return
  fi
  [ -x "$RMQ_BIN/rabbitmq-server" ] || die "rabbitmq: $RMQ_BIN/rabbitmq-server not found (apt-get install rabbitmq-server)"
  require_free_port "$RABBITMQ_PORT" rabbitmq
  require_free_port "$RABBITMQ_MANAGEMENT_PORT" "rabbitmq management"
  require_free_port "$RABBITMQ_DIST_PORT" "rabbitmq distribution"
  mkdir -p "$RMQ_DIR/home" "$RMQ_DIR/mnesia" "$RMQ_DIR/log"
  echo '[rabbitmq_management].' >"$RMQ_DIR/enabled_plugins"
  : >"$RMQ_DIR/rabbitmq-env.conf"
  # The management stats DB samples at the smallest retention interval (5 s by
  # default): 1 s here, so counts and rates in the HTTP API follow within ~1-2 s.
  local policies='[{global, [{605, 1}]}, {basic, [{605, 1}]}, {detailed, [{10, 1}]}]'
  cat >"$RMQ_DIR/advanced.config" <<EOF
[
 {rabbitmq_management, [{sample_retention_policies, $policies}]},
 {rabbitmq_management_agent, [{sample_retention_policies, $policies}]}
].
EOF
  cat >"$RMQ_DIR/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$RABBITMQ_PORT
management.tcp.ip = 127.0.0.1
management.tcp.port = $RABBITMQ_MANAGEMENT_PORT
# rates and counts in the management API refresh every second
collect_statistics_interval = 1000
log.file.level = info
log.console = false
EOF
  rm -f "$RMQ_PIDFILE"
  log "rabbitmq: starting node $RABBITMQ_NODE (amqp 127.0.0.1:$RABBITMQ_PORT, management :$RABBITMQ_MANAGEMENT_PORT)"
  (cd "$RMQ_DIR" && exec 9>&- 8>&- && rmq_env "$RMQ_BIN/rabbitmq-server" -detached </dev/null >>"$RMQ_DIR/startup.log" 2>&1) ||
    { log_tail "$RMQ_DIR/startup.log"; die "rabbitmq: rabbitmq-server -detached failed"; }
  if ! rmq_env timeout $((TIMEOUT + 10)) "$RMQ_BIN/rabbitmqctl" -n "$RABBITMQ_NODE" wait "$RMQ_PIDFILE" --timeout "$TIMEOUT" </dev/null >>"$RMQ_DIR/startup.log" 2>&1; then
    log "rabbitmq: node did not start within ${TIMEOUT}s"
    log_tail "$RMQ_DIR/startup.log" 15
    log_tail "$RMQ_LOG"
    return 1
  fi
  wait_ready rabbitmq "$RMQ_PIDFILE" "$RMQ_LOG" 60 rabbitmq_answers
}

rabbitmq_down() {
  pid_alive "$RMQ_PIDFILE" || { rm -f "$RMQ_PIDFILE"; return 0; }
  local pid; pid="$(cat "$RMQ_PIDFILE")"
  log "rabbitmq: stopping node $RABBITMQ_NODE (pid $pid)"
  rmq_env timeout 60 "$RMQ_BIN/rabbitmqctl" -n "$RABBITMQ_NODE" stop </dev/null >>"$RMQ_DIR/startup.log" 2>&1 || true
  if ! wait_pid_exit "$pid" 30; then
    log "rabbitmq: pid $pid still running; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$RMQ_PIDFILE"
}

# ---------------------------------------------------------------------------- kafka
#
# One KRaft node (broker + controller), Apache Kafka jars from Maven Central,
# PLAINTEXT on 127.0.0.1:19092, controller on :19093. Topics are not
# auto-created: tests create theirs. For the scaler's SASL and TLS paths the
# broker also listens with SASL_PLAINTEXT on :19094 (PLAIN, SCRAM-SHA-256 and
# SCRAM-SHA-512, one user) and SSL on :19095 (a test CA made with openssl in
# $SERVICES_DIR/kafka/tls; client certificates requested, not required, so one
# from the same CA gives mutual TLS). Inter-broker and controller traffic stay
# PLAINTEXT. `up` restarts a broker that runs an older server.properties.

KAFKA_DIR="$SERVICES_DIR/kafka"
KAFKA_PIDFILE="$KAFKA_DIR/kafka.pid"
KAFKA_LOG="$KAFKA_DIR/kafka.log"

KAFKA_SASL_USER=scaler

# Test CA, broker certificate (127.0.0.1 / localhost) and a client certificate
# for mutual TLS, made once per state dir. Keys are unencrypted PKCS#8 PEM.
kafka_tls_files() {
  local dir="$KAFKA_DIR/tls"
  [ -s "$dir/client.pem" ] && return 0
  command -v openssl >/dev/null 2>&1 || die "kafka: openssl not found (apt-get install openssl)"
  local tmp="$KAFKA_DIR/tls.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  log "kafka: making a test CA and certificates in $dir"
  (
    cd "$tmp"
    exec </dev/null >>openssl.log 2>&1
    openssl req -x509 -new -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
      -subj '/CN=keda-inference-scaler test CA' \
      -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'
    local name ext
    for name in server client; do
      if [ "$name" = server ]; then ext='subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth'
      else ext='extendedKeyUsage=clientAuth'; fi
      openssl req -new -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "/CN=kis-test-$name"
      printf 'basicConstraints=CA:FALSE\n%s\n' "$ext" >"$name.ext"
      openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
        -days 3650 -extfile "$name.ext" -out "$name.pem"
    done
    rm -f ./*.csr ./*.ext
    chmod 600 ./*.key
  ) || { log_tail "$tmp/openssl.log"; rm -rf "$tmp"; die "kafka: making test certificates failed"; }
  rm -rf "$dir"; mv "$tmp" "$dir"
}

# The SASL password, made once per state dir (PLAIN reads it from server.properties,
# SCRAM from the cluster metadata, see kafka_scram_users).
kafka_sasl_password() {
  local file="$KAFKA_DIR/sasl-password"
  if [ ! -s "$file" ]; then
    mkdir -p "$KAFKA_DIR"
    (umask 077; openssl rand -hex 12 >"$file")
  fi
  cat "$file"
}

# A PEM file as one java.util.Properties value (\n escapes: Kafka parses real PEM lines).
pem_property() { awk '{ printf "%s\\n", $0 }' "$1"; }

kafka_properties() {
  local tls="$KAFKA_DIR/tls" password; password="$(kafka_sasl_password)"
  cat <<EOF
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT,SSL://127.0.0.1:$KAFKA_SSL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT,SSL://127.0.0.1:$KAFKA_SSL_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_SASL_USER="$password";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.ssl.ssl.client.auth=requested
listener.name.ssl.ssl.keystore.type=PEM
listener.name.ssl.ssl.keystore.key=$(pem_property "$tls/server.key")
listener.name.ssl.ssl.keystore.certificate.chain=$(pem_property "$tls/server.pem")
listener.name.ssl.ssl.truststore.type=PEM
listener.name.ssl.ssl.truststore.certificates=$(pem_property "$tls/ca.pem")
log.dirs=$KAFKA_DIR/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
log.retention.hours=24
EOF
}

kafka_lines() {
  echo "KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
  echo "KAFKA_SASL_BROKERS=127.0.0.1:$KAFKA_SASL_PORT"
  echo "KAFKA_SASL_USERNAME=$KAFKA_SASL_USER"
  echo "KAFKA_SASL_PASSWORD=$(kafka_sasl_password)"
  echo "KAFKA_TLS_BROKERS=127.0.0.1:$KAFKA_SSL_PORT"
  echo "KAFKA_TLS_CA_FILE=$KAFKA_DIR/tls/ca.pem"
  echo "KAFKA_TLS_CLIENT_CERT_FILE=$KAFKA_DIR/tls/client.pem"
  echo "KAFKA_TLS_CLIENT_KEY_FILE=$KAFKA_DIR/tls/client.key"
}
# The broker lists itself and a group coordinator answers (scripts/probes/kafka.mjs, kafkajs).
kafka_answers() { "$(node_bin)" "$REPO_ROOT/scripts/probes/kafka.mjs" "127.0.0.1:$KAFKA_PORT" 5000; }
kafka_alive() { pid_alive "$KAFKA_PIDFILE"; }
kafka_secure_ports_open() { port_open "$KAFKA_SASL_PORT" && port_open "$KAFKA_SSL_PORT"; }

# SCRAM users live in the cluster metadata, not in server.properties: made through the
# admin API (works on a fresh and on an already formatted node alike), once per password.
kafka_scram_users() {
  local password done_file="$KAFKA_DIR/scram-users.done"
  password="$(kafka_sasl_password)"
  local want; want="$KAFKA_SASL_USER $(printf '%s' "$password" | sha256sum | cut -c1-16)"
  [ "$(cat "$done_file" 2>/dev/null)" = "$want" ] && return 0
  log "kafka: adding SCRAM-SHA-256/512 credentials for user $KAFKA_SASL_USER"
  : >"$KAFKA_DIR/scram.log"
  local mechanism
  for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do # one per request: the broker refuses two for one user
    # shellcheck disable=SC2086
    if ! java $KAFKA_JAVA_OPTS -cp "$KAFKA_HOME/jars/*" kafka.admin.ConfigCommand \
        --bootstrap-server "127.0.0.1:$KAFKA_PORT" --alter --entity-type users --entity-name "$KAFKA_SASL_USER" \
        --add-config "$mechanism=[password=$password]" </dev/null >>"$KAFKA_DIR/scram.log" 2>&1; then
      log_tail "$KAFKA_DIR/scram.log" 15
      return 1
    fi
  done
  echo "$want" >"$done_file"
}

kafka_up() {
  kafka_tls_files
  mkdir -p "$KAFKA_DIR"
  kafka_properties >"$KAFKA_DIR/server.properties.next"
  if pid_alive "$KAFKA_PIDFILE"; then
    if cmp -s "$KAFKA_DIR/server.properties.next" "$KAFKA_DIR/server.properties"; then
      rm -f "$KAFKA_DIR/server.properties.next"
      if kafka_answers >/dev/null 2>&1 && kafka_secure_ports_open; then
        log "kafka: already running (pid $(cat "$KAFKA_PIDFILE"))"
      else
        log "kafka: pid $(cat "$KAFKA_PIDFILE") alive but not answering yet; waiting"
        wait_ready kafka "$KAFKA_PIDFILE" "$KAFKA_LOG" "$TIMEOUT" kafka_answers || return 1
        wait_ready "kafka (SASL and SSL listeners)" "$KAFKA_PIDFILE" "$KAFKA_LOG" 30 kafka_secure_ports_open || return 1
      fi
      kafka_scram_users
      return
    fi
    # Started from an older server.properties (e.g. before the SASL and SSL listeners).
    log "kafka: pid $(cat "$KAFKA_PIDFILE") runs an older configuration; restarting it with the new one"
    kafka_down
  fi
  [ -f "$KAFKA_HOME/.complete" ] || die "kafka: jars missing in $KAFKA_HOME"
  require_free_port "$KAFKA_PORT" kafka
  require_free_port "$KAFKA_CONTROLLER_PORT" "kafka controller"
  require_free_port "$KAFKA_SASL_PORT" "kafka SASL listener"
  require_free_port "$KAFKA_SSL_PORT" "kafka SSL listener"
  mkdir -p "$KAFKA_DIR/data"
  mv -f "$KAFKA_DIR/server.properties.next" "$KAFKA_DIR/server.properties"
  chmod 600 "$KAFKA_DIR/server.properties"
  local cp="$KAFKA_HOME/jars/*"
  if [ ! -f "$KAFKA_DIR/data/meta.properties" ]; then
    local cluster_id
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    log "kafka: formatting storage (cluster id $cluster_id)"
    rm -f "$KAFKA_DIR/scram-users.done"
    # shellcheck disable=SC2086
    if ! java $KAFKA_JAVA_OPTS -cp "$cp" kafka.tools.StorageTool format --standalone -t "$cluster_id" \
        -c "$KAFKA_DIR/server.properties" </dev/null >"$KAFKA_DIR/format.log" 2>&1; then
      log_tail "$KAFKA_DIR/format.log"
      rm -rf "$KAFKA_DIR/data"
      die "kafka: storage format failed"
    fi
  fi
  log "kafka: starting $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (SASL :$KAFKA_SASL_PORT, SSL :$KAFKA_SSL_PORT, controller :$KAFKA_CONTROLLER_PORT)"
  : >"$KAFKA_LOG"
  # shellcheck disable=SC2086
  spawn "$KAFKA_PIDFILE" "$KAFKA_LOG" "$KAFKA_DIR" \
    java $KAFKA_JAVA_OPTS -Djava.awt.headless=true \
    -Dorg.slf4j.simpleLogger.showDateTime=true \
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS" \
    -Dorg.slf4j.simpleLogger.log.org.apache.kafka.common.config=warn \
    -cp "$cp" kafka.Kafka "$KAFKA_DIR/server.properties"
  wait_ready kafka "$KAFKA_PIDFILE" "$KAFKA_LOG" "$TIMEOUT" kafka_answers || return 1
  wait_ready "kafka (SASL and SSL listeners)" "$KAFKA_PIDFILE" "$KAFKA_LOG" 30 kafka_secure_ports_open || return 1
  kafka_scram_users
}

kafka_down() {
  stop_pid kafka "$KAFKA_PIDFILE" 30
}

# ---------------------------------------------------------------------------- sqs
#
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

SQS_DIR="$SERVICES_DIR/sqs"
SQS_PIDFILE="$SQS_DIR/sqs.pid"
SQS_LOG="$SQS_DIR/sqs.log"

sqs_lines() { echo "SQS_ENDPOINT=http://127.0.0.1:$SQS_PORT"; }
# A real AWS JSON-protocol call. moto routes on the credential scope of the
# Authorization header, so send one (the signature is not checked).
sqs_answers() {
  curl -fsS -m 5 -o /dev/null -X POST "http://127.0.0.1:$SQS_PORT/" \
    -H 'content-type: application/x-amz-json-1.0' -H 'x-amz-target: AmazonSQS.ListQueues' \
    -H 'authorization: AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0' \
    -d '{}'
}
sqs_alive() { pid_alive "$SQS_PIDFILE"; }

sqs_up() {
  if pid_alive "$SQS_PIDFILE"; then
    local running; running="$(cat "$SQS_DIR/emulator" 2>/dev/null || echo '?')"
    [ "$running" = "$SQS_EMULATOR" ] || log "sqs: note: $running is running, not $SQS_EMULATOR (down sqs first to switch)"
    if sqs_answers; then log "sqs: already running ($running, pid $(cat "$SQS_PIDFILE"))"; return 0; fi
    log "sqs: pid $(cat "$SQS_PIDFILE") alive but not answering yet; waiting"
    wait_ready sqs "$SQS_PIDFILE" "$SQS_LOG" "$TIMEOUT" sqs_answers
    return
  fi
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
      cat >"$SQS_DIR/elasticmq.conf" <<EOF
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
EOF
      log "sqs: starting ElasticMQ $ELASTICMQ_VERSION on 127.0.0.1:$SQS_PORT"
      spawn "$SQS_PIDFILE" "$SQS_LOG" "$SQS_DIR" \
        java -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        -Dconfig.file="$SQS_DIR/elasticmq.conf" -cp "$ELASTICMQ_HOME/jars/*" org.elasticmq.server.Main
      ;;
    *) die "SERVICES_SQS must be moto or elasticmq, not '$SQS_EMULATOR'" ;;
  esac
  wait_ready sqs "$SQS_PIDFILE" "$SQS_LOG" "$TIMEOUT" sqs_answers
}

sqs_down() {
  stop_pid sqs "$SQS_PIDFILE" 15
}

# ---------------------------------------------------------------------------- prometheus
#
# Debian's prometheus binary, run by us (not its systemd unit) on :19090,
# scraping the fake DCGM exporter (:19400) every second with honor_labels, so
# the exporter's namespace/pod labels are kept as they are.

PROM_DIR="$SERVICES_DIR/prometheus"
PROM_PIDFILE="$PROM_DIR/prometheus.pid"
PROM_LOG="$PROM_DIR/prometheus.log"
DCGM_PIDFILE="$PROM_DIR/dcgm-exporter.pid"
DCGM_LOG="$PROM_DIR/dcgm-exporter.log"

prometheus_lines() {
  echo "PROMETHEUS_URL=http://127.0.0.1:$PROMETHEUS_PORT"
  echo "DCGM_EXPORTER_URL=http://127.0.0.1:$DCGM_PORT"
}
dcgm_answers() { curl -fsS -m 5 -o /dev/null "http://127.0.0.1:$DCGM_PORT/metrics"; }
prom_answers() { curl -fsS -m 5 -o /dev/null "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"; }
prometheus_answers() { prom_answers && dcgm_answers; }
# Ready and has scraped the exporter at least once.
prometheus_scraped() {
  curl -fsS -m 5 "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/query" --data-urlencode 'query=up{job="dcgm-exporter"}' |
    grep -q '"value":\[[0-9.]*,"1"\]'
}
prometheus_alive() { pid_alive "$PROM_PIDFILE" || pid_alive "$DCGM_PIDFILE"; }

prometheus_up() {
  mkdir -p "$PROM_DIR"
  # the exporter first, so that the first scrape finds it
  if pid_alive "$DCGM_PIDFILE" && dcgm_answers; then
    log "dcgm-exporter: already running (pid $(cat "$DCGM_PIDFILE"))"
  else
    stop_pid dcgm-exporter "$DCGM_PIDFILE" 5
    require_free_port "$DCGM_PORT" "fake dcgm exporter"
    local node; node="$(node_bin)"
    log "dcgm-exporter: starting fake exporter on 127.0.0.1:$DCGM_PORT ($("$node" --version))"
    : >"$DCGM_LOG"
    spawn "$DCGM_PIDFILE" "$DCGM_LOG" "$PROM_DIR" "$node" "$REPO_ROOT/scripts/fake-dcgm-exporter.mjs" "$DCGM_PORT" 127.0.0.1
    wait_ready dcgm-exporter "$DCGM_PIDFILE" "$DCGM_LOG" 30 dcgm_answers || return 1
  fi

  if pid_alive "$PROM_PIDFILE"; then
    if prom_answers; then log "prometheus: already running (pid $(cat "$PROM_PIDFILE"))"; return 0; fi
    log "prometheus: pid $(cat "$PROM_PIDFILE") alive but not answering yet; waiting"
    wait_ready prometheus "$PROM_PIDFILE" "$PROM_LOG" "$TIMEOUT" prom_answers
    return
  fi
  local prom; prom="$(command -v prometheus || echo /usr/bin/prometheus)"
  [ -x "$prom" ] || die "prometheus: binary not found (apt-get install prometheus)"
  require_free_port "$PROMETHEUS_PORT" prometheus
  cat >"$PROM_DIR/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: dcgm-exporter
    honor_labels: true
    static_configs:
      - targets: ['127.0.0.1:$DCGM_PORT']
EOF
  # A fresh TSDB on every start: no series left over from an earlier run.
  rm -rf "$PROM_DIR/data"
  log "prometheus: starting on 127.0.0.1:$PROMETHEUS_PORT"
  : >"$PROM_LOG"
  spawn "$PROM_PIDFILE" "$PROM_LOG" "$PROM_DIR" \
    "$prom" --config.file="$PROM_DIR/prometheus.yml" \
    --storage.tsdb.path="$PROM_DIR/data" --storage.tsdb.retention.time=1d \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT"
  wait_ready prometheus "$PROM_PIDFILE" "$PROM_LOG" "$TIMEOUT" prom_answers || return 1
  wait_ready "prometheus (first scrape of the exporter)" "$PROM_PIDFILE" "$PROM_LOG" 30 prometheus_scraped
}

prometheus_down() {
  stop_pid prometheus "$PROM_PIDFILE" 15
  stop_pid dcgm-exporter "$DCGM_PIDFILE" 5
}

# ---------------------------------------------------------------------------- redis
#
# Debian's redis-server (7.0), run by us (not its systemd unit) on 127.0.0.1:16379:
# the scaler's shared state store. No persistence (the store holds what the
# scaler replicas relearn and republish); every key the scaler writes has a TTL,
# so a memory bound evicts only those (volatile-lru). Valkey speaks the same
# protocol; the chart and the compose file run valkey 7.2, the same major line.

REDIS_DIR="$SERVICES_DIR/redis"
REDIS_PIDFILE="$REDIS_DIR/redis.pid"
REDIS_LOG="$REDIS_DIR/redis.log"

redis_lines() { echo "STATE_STORE_URL=redis://127.0.0.1:$REDIS_PORT"; }
redis_answers() { timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
redis_alive() { pid_alive "$REDIS_PIDFILE"; }

redis_up() {
  if pid_alive "$REDIS_PIDFILE"; then
    if redis_answers; then log "redis: already running (pid $(cat "$REDIS_PIDFILE"))"; return 0; fi
    log "redis: pid $(cat "$REDIS_PIDFILE") alive but not answering yet; waiting"
    wait_ready redis "$REDIS_PIDFILE" "$REDIS_LOG" "$TIMEOUT" redis_answers
    return
  fi
  local server; server="$(command -v redis-server || echo /usr/bin/redis-server)"
  [ -x "$server" ] || die "redis: redis-server not found (apt-get install redis-server)"
  require_free_port "$REDIS_PORT" redis
  mkdir -p "$REDIS_DIR/data"
  cat >"$REDIS_DIR/redis.conf" <<EOF
bind 127.0.0.1
port $REDIS_PORT
daemonize no
logfile ""
dir $REDIS_DIR/data
save ""
appendonly no
maxmemory 256mb
maxmemory-policy volatile-lru
EOF
  log "redis: starting $("$server" --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on 127.0.0.1:$REDIS_PORT"
  : >"$REDIS_LOG"
  spawn "$REDIS_PIDFILE" "$REDIS_LOG" "$REDIS_DIR" "$server" "$REDIS_DIR/redis.conf"
  wait_ready redis "$REDIS_PIDFILE" "$REDIS_LOG" "$TIMEOUT" redis_answers
}

redis_down() {
  stop_pid redis "$REDIS_PIDFILE" 10
}

# ---------------------------------------------------------------------------- commands

# running: our processes are alive and answer; foreign: nothing of ours runs but
# the service answers on its ports (started from another checkout or state
# dir); starting: ours are alive but do not answer (yet); stopped.
svc_state() { # service
  if "${1}_alive"; then
    if "${1}_answers" >/dev/null 2>&1; then echo running; else echo starting; fi
  elif "${1}_answers" >/dev/null 2>&1; then echo foreign
  else echo stopped; fi
}

svc_up() { # service
  local s="$1"
  if ! "${s}_alive" && "${s}_answers" >/dev/null 2>&1; then
    log "$s: not started from $SERVICES_DIR, but something already answers as $s on its ports (another checkout?); using it as it is. Stop it there to run this checkout's own."
    return 0
  fi
  "${s}_up"
}

write_env_file() {
  local s tmp="$SERVICES_DIR/env.tmp.$$"
  : >"$tmp"
  for s in "${ALL_SERVICES[@]}"; do
    if [ -s "$SERVICES_DIR/$s/env" ]; then
      case "$(svc_state "$s")" in running | foreign) cat "$SERVICES_DIR/$s/env" >>"$tmp" ;; esac
    fi
  done
  mv -f "$tmp" "$SERVICES_DIR/env"
}

cmd_up() {
  local started=$SECONDS s
  install_for "$@"
  local pids=() failed=()
  for s in "$@"; do
    mkdir -p "$SERVICES_DIR/$s"
    rm -f "$SERVICES_DIR/$s/env"
    ( svc_up "$s" && "${s}_lines" >"$SERVICES_DIR/$s/env" ) &
    pids+=($!)
  done
  local i
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${@:$((i + 1)):1}"); done
  write_env_file
  for s in "$@"; do [ -s "$SERVICES_DIR/$s/env" ] && cat "$SERVICES_DIR/$s/env"; done
  if ((${#failed[@]})); then
    die "failed to start: ${failed[*]} (logs under $SERVICES_DIR)"
  fi
  log "up: $* ready in $((SECONDS - started))s (lines also in $SERVICES_DIR/env)"
}

cmd_down() {
  local purge=0 s
  if [ "${1:-}" = --purge ]; then purge=1; shift; fi
  (($#)) || set -- "${ALL_SERVICES[@]}"
  validate_services "$@"
  local pids=()
  for s in "$@"; do "${s}_down" & pids+=($!); done
  local rc=0 p
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  for s in "$@"; do
    rm -f "$SERVICES_DIR/$s/env"
    if ((purge)); then log "$s: deleting $SERVICES_DIR/$s"; rm -rf "${SERVICES_DIR:?}/$s"; fi
  done
  write_env_file
  return $rc
}

cmd_status() {
  local s state
  for s in "$@"; do
    state="$(svc_state "$s")"
    case "$s" in
      rabbitmq) printf '%-10s %-8s amqp://127.0.0.1:%s management http://127.0.0.1:%s node %s\n' "$s" "$state" "$RABBITMQ_PORT" "$RABBITMQ_MANAGEMENT_PORT" "$RABBITMQ_NODE" ;;
      kafka) printf '%-10s %-8s 127.0.0.1:%s (SASL :%s, SSL :%s, controller :%s, Kafka %s)\n' "$s" "$state" "$KAFKA_PORT" "$KAFKA_SASL_PORT" "$KAFKA_SSL_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_VERSION" ;;
      sqs) printf '%-10s %-8s http://127.0.0.1:%s (%s)\n' "$s" "$state" "$SQS_PORT" "$(cat "$SQS_DIR/emulator" 2>/dev/null || echo "$SQS_EMULATOR")" ;;
      prometheus) printf '%-10s %-8s http://127.0.0.1:%s, fake dcgm exporter http://127.0.0.1:%s\n' "$s" "$state" "$PROMETHEUS_PORT" "$DCGM_PORT" ;;
      redis) printf '%-10s %-8s redis://127.0.0.1:%s (state store)\n' "$s" "$state" "$REDIS_PORT" ;;
    esac
  done
}

validate_services() {
  local s ok a
  for s in "$@"; do
    ok=0
    for a in "${ALL_SERVICES[@]}"; do [ "$s" = "$a" ] && ok=1; done
    ((ok)) || die "unknown service '$s' (known: ${ALL_SERVICES[*]})"
  done
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

main() {
  local cmd="${1:-}"
  (($#)) && shift
  case "$cmd" in
    up | down | status) ;;
    -h | --help | help) usage 0 ;;
    *) usage 2 ;;
  esac
  mkdir -p "$SERVICES_DIR" "$CACHE_DIR"
  SERVICES_DIR="$(cd "$SERVICES_DIR" && pwd)"
  # re-derive the paths that depend on SERVICES_DIR now that it is absolute
  RMQ_DIR="$SERVICES_DIR/rabbitmq"; RMQ_PIDFILE="$RMQ_DIR/rabbitmq.pid"; RMQ_LOG="$RMQ_DIR/log/$RABBITMQ_NODE.log"
  KAFKA_DIR="$SERVICES_DIR/kafka"; KAFKA_PIDFILE="$KAFKA_DIR/kafka.pid"; KAFKA_LOG="$KAFKA_DIR/kafka.log"
  SQS_DIR="$SERVICES_DIR/sqs"; SQS_PIDFILE="$SQS_DIR/sqs.pid"; SQS_LOG="$SQS_DIR/sqs.log"
  PROM_DIR="$SERVICES_DIR/prometheus"; PROM_PIDFILE="$PROM_DIR/prometheus.pid"; PROM_LOG="$PROM_DIR/prometheus.log"
  DCGM_PIDFILE="$PROM_DIR/dcgm-exporter.pid"; DCGM_LOG="$PROM_DIR/dcgm-exporter.log"
  REDIS_DIR="$SERVICES_DIR/redis"; REDIS_PIDFILE="$REDIS_DIR/redis.pid"; REDIS_LOG="$REDIS_DIR/redis.log"

  case "$cmd" in
    status)
      (($#)) || set -- "${ALL_SERVICES[@]}"
      validate_services "$@"
      cmd_status "$@"
      return 0
      ;;
  esac
  # one up/down at a time per state dir (fd 9 is closed in every daemon we start)
  exec 9>"$SERVICES_DIR/.lock"
  if ! flock -w 600 9; then die "another services.sh holds $SERVICES_DIR/.lock"; fi
  case "$cmd" in
    up)
      (($#)) || set -- "${ALL_SERVICES[@]}"
      validate_services "$@"
      cmd_up "$@"
      ;;
    down) cmd_down "$@" ;;
  esac
}

main "$@"

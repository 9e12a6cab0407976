#!/usr/bin/env bash
# Native test bed: real brokers on loopback, without Docker.
#
#   scripts/services.sh up     [service...]   install what is missing, start, wait, print KEY=value lines
#   scripts/services.sh down   [--purge] [service...]   stop what `up` started (by pid); --purge also deletes data
#   scripts/services.sh status [service...]   one line per service (running / starting / stopped, or
#                                             foreign: answering, but not started from this SERVICES_DIR); exits 0
#   scripts/services.sh env    [service...]   the KEY=value lines `up` printed, for those that answer now
#
# Services: rabbitmq kafka sqs prometheus redis (default: all), one file each in scripts/services/
# (the interface they share is at the top of scripts/services/lib.sh). `prometheus` includes the
# fake DCGM exporter (scripts/fake-dcgm-exporter.mjs) that it scrapes; `redis` is the
# scaler's shared state store (STATE_STORE_URL). Readiness is probed with the project's own
# clients (scripts/probes/*.mjs), so run `npm ci` first.
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
#                        RABBITMQ_TLS=5674 RABBITMQ_MANAGEMENT_TLS=15674
#                        KAFKA=19092 KAFKA_CONTROLLER=19093 KAFKA_SASL=19094 KAFKA_SSL=19095
#                        SQS=19324 PROMETHEUS=19090 DCGM=19400 REDIS=16379
#   SERVICES_KAFKA_JAVA_OPTS  JVM options for the Kafka broker
#
# Needs: Debian (apt-get, run as root or with sudo) for rabbitmq-server, prometheus and redis-server;
# Java 17 + Maven for Kafka (and ElasticMQ), openssl for Kafka's and RabbitMQ's test certificates; Python 3
# with venv for moto; Node >= 20 and node_modules (npm ci) for the probes.
set -euo pipefail

# In the order `status`, `env` and the env file list them.
ALL_SERVICES=(rabbitmq kafka sqs prometheus redis)
SERVICE_INTERFACE=(packages install_needs install start ready alive stop env describe)

# shellcheck source=scripts/services/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/services/lib.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

validate_services() {
  local s ok a
  for s in "$@"; do
    ok=0
    for a in "${ALL_SERVICES[@]}"; do [ "$s" = "$a" ] && ok=1; done
    ((ok)) || die "unknown service '$s' (known: ${ALL_SERVICES[*]})"
  done
}

# Each service file defines the whole interface, or nothing runs.
load_services() {
  local s f
  for s in "${ALL_SERVICES[@]}"; do
    # shellcheck source=/dev/null # one file per service, checked on their own
    . "$REPO_ROOT/scripts/services/$s.sh"
    for f in "${SERVICE_INTERFACE[@]}"; do
      declare -F "${s}_$f" >/dev/null || die "scripts/services/$s.sh does not define ${s}_$f"
    done
  done
}

# running: our processes are alive and answer; foreign: nothing of ours runs but
# the service answers on its ports (started from another checkout or state
# dir); starting: ours are alive but do not answer (yet); stopped.
svc_state() { # service
  if "${1}_alive"; then
    if "${1}_ready" >/dev/null 2>&1; then echo running; else echo starting; fi
  elif "${1}_ready" >/dev/null 2>&1; then echo foreign
  else echo stopped; fi
}

svc_start() { # service
  local s="$1"
  if ! "${s}_alive" && "${s}_ready" >/dev/null 2>&1; then
    log "$s: not started from $SERVICES_DIR, but something already answers as $s on its ports (another checkout?); using it as it is. Stop it there to run this checkout's own."
    return 0
  fi
  "${s}_start"
}

# The env lines `up` saved for each of these services that answers now.
env_lines() { # services...
  local s
  for s in "$@"; do
    if [ -s "$SERVICES_DIR/$s/env" ]; then
      case "$(svc_state "$s")" in running | foreign) cat "$SERVICES_DIR/$s/env" ;; esac
    fi
  done
}

write_env_file() {
  local tmp="$SERVICES_DIR/env.tmp.$$"
  env_lines "${ALL_SERVICES[@]}" >"$tmp"
  mv -f "$tmp" "$SERVICES_DIR/env"
}

# One apt-get for every missing package; the Maven and PyPI downloads beside it, or after it when
# one of them needs what apt brings (a JDK, Maven).
install_services() { # services...
  local s packages needs
  packages="$(for s in "$@"; do "${s}_packages"; done; base_packages)"
  needs="$(for s in "$@"; do "${s}_install_needs"; done)"
  local apt_pkgs=()
  if [ -n "$packages$needs" ]; then mapfile -t apt_pkgs < <(printf '%s\n' "$packages" "$needs" | grep .); fi
  if [ -n "$needs" ]; then apt_install "${apt_pkgs[@]}"; apt_pkgs=(); fi

  local pids=() names=() failed=0 i
  if ((${#apt_pkgs[@]})); then apt_install "${apt_pkgs[@]}" & pids+=($!); names+=(apt); fi
  for s in "$@"; do "${s}_install" & pids+=($!); names+=("$s"); done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { log "install of ${names[$i]} failed"; failed=1; }
  done
  ((failed == 0)) || die "installation failed"
}

cmd_up() {
  local started=$SECONDS s
  install_services "$@"
  local pids=() failed=()
  for s in "$@"; do
    mkdir -p "$SERVICES_DIR/$s"
    rm -f "$SERVICES_DIR/$s/env"
    ( svc_start "$s" && "${s}_env" >"$SERVICES_DIR/$s/env" ) &
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
  for s in "$@"; do "${s}_stop" & pids+=($!); done
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
  local s
  for s in "$@"; do
    printf '%-10s %-8s %s\n' "$s" "$(svc_state "$s")" "$("${s}_describe")"
  done
}

main() {
  local cmd="${1:-}"
  (($#)) && shift
  case "$cmd" in
    up | down | status | env) ;;
    -h | --help | help) usage 0 ;;
    *) usage 2 ;;
  esac
  mkdir -p "$SERVICES_DIR" "$CACHE_DIR"
  # absolute before the service files derive their paths from it
  SERVICES_DIR="$(cd "$SERVICES_DIR" && pwd)"
  load_services
  # Without the clients every probe fails, and `up` would wait SERVICES_TIMEOUT to say so.
  if [ "$cmd" != down ] && [ ! -d "$REPO_ROOT/node_modules/amqplib" ]; then
    die "no node_modules in $REPO_ROOT: the readiness probes (scripts/probes/) use the project's clients; run npm ci first"
  fi

  case "$cmd" in
    status | env)
      (($#)) || set -- "${ALL_SERVICES[@]}"
      validate_services "$@"
      if [ "$cmd" = status ]; then cmd_status "$@"; return 0; fi
      env_lines "$@"
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

# shellcheck shell=bash
# Redis: Debian's redis-server (7.0.15 on bookworm), run by us (not its systemd unit) on
# 127.0.0.1:16379: the scaler's shared state store. No persistence (the store holds what the
# scaler replicas relearn and republish); every key the scaler writes has a TTL,
# so a memory bound evicts only those (volatile-lru). The compose file runs redis:7.0.15 too;
# the Helm chart's bundled store is Valkey 7.2, which speaks the same protocol.

# shellcheck source=scripts/services/lib.sh
[ -n "${SERVICES_LIB_LOADED:-}" ] || . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REDIS_PORT="${SERVICES_REDIS_PORT:-16379}"

REDIS_DIR="$SERVICES_DIR/redis"
REDIS_PIDFILE="$REDIS_DIR/redis.pid"
REDIS_LOG="$REDIS_DIR/redis.log"
pid_pattern redis.pid redis-server

redis_packages() { missing_packages redis-server; }
redis_install_needs() { :; }
redis_install() { :; }

redis_env() { echo "STATE_STORE_URL=redis://127.0.0.1:$REDIS_PORT"; }
redis_describe() { echo "redis://127.0.0.1:$REDIS_PORT (state store)"; }
# PING answers PONG, asked with ioredis (scripts/probes/redis.mjs).
redis_ready() { probe redis "redis://127.0.0.1:$REDIS_PORT" 5000; }
redis_alive() { pid_alive "$REDIS_PIDFILE"; }

redis_start() {
  local running=0; attach_running redis "$REDIS_PIDFILE" "$REDIS_LOG" redis_ready || running=$?
  [ "$running" = 2 ] || return "$running"
  local server; server="$(command -v redis-server || echo /usr/bin/redis-server)"
  [ -x "$server" ] || die "redis: redis-server not found (apt-get install redis-server)"
  require_free_port "$REDIS_PORT" redis
  mkdir -p "$REDIS_DIR/data"
  cat >"$REDIS_DIR/redis.conf" <<CONF
bind 127.0.0.1
port $REDIS_PORT
daemonize no
logfile ""
dir $REDIS_DIR/data
save ""
appendonly no
maxmemory 256mb
maxmemory-policy volatile-lru
CONF
  log "redis: starting $("$server" --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on 127.0.0.1:$REDIS_PORT"
  : >"$REDIS_LOG"
  spawn "$REDIS_PIDFILE" "$REDIS_LOG" "$REDIS_DIR" "$server" "$REDIS_DIR/redis.conf"
  wait_ready redis "$REDIS_PIDFILE" "$REDIS_LOG" "$TIMEOUT" redis_ready
}

redis_stop() {
  stop_pid redis "$REDIS_PIDFILE" 10
}

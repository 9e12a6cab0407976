# shellcheck shell=bash
# What the test bed's services share: configuration, logging, pid files, ports, starting and
# waiting, and the installs from apt, Maven Central and PyPI. Sourced by scripts/services.sh,
# which then sources one file per service from this folder.
#
# The service interface. A service NAME (the file NAME.sh) defines these functions; the driver
# calls nothing else of it, and refuses to run when one is missing:
#
#   NAME_packages       Debian packages it needs that are not installed yet, one a line
#   NAME_install_needs  those of them that NAME_install needs before it runs (a JDK, Maven); when any
#                       service prints one, apt runs first, else beside the downloads
#   NAME_install        what apt does not bring (Maven Central, PyPI) into $CACHE_DIR, once
#   NAME_start          start it (or find our own instance running) and wait until NAME_ready;
#                       never called when a foreign instance already answers on its ports
#   NAME_ready          exit 0 when it answers as the tests need it, probed with the project's own
#                       client (scripts/probes/NAME.mjs)
#   NAME_alive          exit 0 when the process this state dir started is still alive
#   NAME_stop           stop what this state dir started (by pid), nothing else
#   NAME_env            the KEY=value lines that tell the tests where it is
#   NAME_describe       what `status` prints after the name and state (addresses, version)
#
# Paths (pid files, logs, data) live under $SERVICES_DIR/NAME, which the driver has made absolute
# before it sources the service files. A service file sources this one when it is not loaded yet,
# so one can be tried alone: `. scripts/services/redis.sh; redis_ready && echo ready`.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SERVICES_DIR="${SERVICES_DIR:-$REPO_ROOT/.services}"
CACHE_DIR="${SERVICES_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/keda-inference-scaler}"
# shellcheck disable=SC2034 # the service files wait this long
TIMEOUT="${SERVICES_TIMEOUT:-120}"
# shellcheck disable=SC2034 # what a service file checks before it sources this one
SERVICES_LIB_LOADED=1

export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

log() { printf '[services] %s\n' "$*" >&2; }
# shellcheck source=scripts/retried.sh
. "$REPO_ROOT/scripts/retried.sh"
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------- processes

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

# A readiness probe: scripts/probes/NAME.mjs with the project's own client for the service.
# They import from node_modules, so `npm ci` comes before `up` (as in `npm ci && npm test`).
# What a probe prints goes to stderr: `up`'s stdout carries only KEY=value lines.
probe() { # name args...
  local name="$1"; shift
  "$(node_bin)" "$REPO_ROOT/scripts/probes/$name.mjs" "$@" >&2
}

# What each pid file's process must have in its command line (see pid_alive), keyed by the pid
# file's name; each service file names its own with pid_pattern.
declare -A PID_PATTERN=()
pid_pattern() { PID_PATTERN[$1]="$2"; } # pidfile-name grep-pattern

# The pid in PIDFILE is alive and is still our process (not a pid reused after
# a reboot): its command line must name what we started.
pid_alive() { # pidfile
  [ -s "$1" ] || return 1
  local pid; pid="$(cat "$1" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  local pattern="${PID_PATTERN[${1##*/}]:-}"
  [ -n "$pattern" ] || return 0
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
    cd "$workdir" || exit 1
    exec 9>&- 8>&- </dev/null >>"$logfile" 2>&1
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    exec setsid bash -c 'echo $$ > "$0"; exec "$@"' "$pidfile" "$@"
  ) &
  local _
  for _ in $(seq 50); do [ -s "$pidfile" ] && return 0; sleep 0.1; done
  die "could not start $1"
}

# Wait until `check` succeeds, the process dies, or the timeout passes. On failure the check's
# last words (a probe's one line of why) are logged with the tail of the service's log.
# A service whose pid file names a live process: "already running" when CHECK answers, else waits
# for it. Returns 0 when it answers, 1 when it did not in time, 2 when nothing runs (start it).
attach_running() { # name pidfile logfile check [what to say about it]
  local name="$1" pidfile="$2" logfile="$3" check="$4" what="${5:-}"
  pid_alive "$pidfile" || return 2
  if "$check" >/dev/null 2>&1; then log "$name: already running (${what:+$what, }pid $(cat "$pidfile"))"; return 0; fi
  log "$name: pid $(cat "$pidfile") alive but not answering yet; waiting"
  wait_ready "$name" "$pidfile" "$logfile" "$TIMEOUT" "$check" || return 1
}

wait_ready() { # name pidfile logfile timeout check...
  local name="$1" pidfile="$2" logfile="$3" limit="$4"; shift 4
  local deadline=$((SECONDS + limit)) said
  while :; do
    if said="$("$@" 2>&1)"; then return 0; fi
    if ! pid_alive "$pidfile"; then
      log "$name: the process exited before it answered${said:+ (last check: ${said##*$'\n'})}"
      log_tail "$logfile"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "$name: did not answer within ${limit}s${said:+ (last check: ${said##*$'\n'})}"
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

# ---------------------------------------------------------------------------- test certificates

# A test CA (DIR/ca.pem) and, signed by it, a server certificate for 127.0.0.1 and localhost
# (DIR/server.pem, server.key) and a client certificate (DIR/client.pem, client.key), made with
# openssl once per state dir (keys unencrypted PKCS#8 PEM); the tests read the CA from DIR/ca.pem.
test_tls_files() { # name dir
  local name="$1" dir="$2"
  [ -s "$dir/client.pem" ] && return 0
  command -v openssl >/dev/null 2>&1 || die "$name: openssl not found (apt-get install openssl)"
  local tmp="$dir.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  log "$name: making a test CA and certificates in $dir"
  (
    cd "$tmp"
    exec </dev/null >>openssl.log 2>&1
    openssl req -x509 -new -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
      -subj '/CN=keda-inference-scaler test CA' \
      -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'
    local leaf ext
    for leaf in server client; do
      if [ "$leaf" = server ]; then ext='subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth'
      else ext='extendedKeyUsage=clientAuth'; fi
      openssl req -new -newkey rsa:2048 -nodes -keyout "$leaf.key" -out "$leaf.csr" -subj "/CN=kis-test-$leaf"
      printf 'basicConstraints=CA:FALSE\n%s\n' "$ext" >"$leaf.ext"
      openssl x509 -req -in "$leaf.csr" -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
        -days 3650 -extfile "$leaf.ext" -out "$leaf.pem"
    done
    rm -f ./*.csr ./*.ext
    chmod 600 ./*.key
  ) || { log_tail "$tmp/openssl.log"; rm -rf "$tmp"; die "$name: making test certificates failed"; }
  rm -rf "$dir"; mv "$tmp" "$dir"
}

# ---------------------------------------------------------------------------- installs

POLICY_RC_D=/usr/sbin/policy-rc.d
POLICY_RC_D_OURS=0
cleanup_policy_rc_d() {
  if [ "$POLICY_RC_D_OURS" = 1 ]; then "${SUDO[@]}" rm -f "$POLICY_RC_D"; POLICY_RC_D_OURS=0; fi
}
trap cleanup_policy_rc_d EXIT

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# The packages of those given that are not installed, one a line.
missing_packages() { # packages...
  local p
  for p in "$@"; do pkg_installed "$p" || echo "$p"; done
}

# A JDK and Maven, for a service whose install step fetches jars from Maven Central.
java_build_packages() {
  command -v java >/dev/null 2>&1 || echo openjdk-17-jre-headless
  command -v mvn >/dev/null 2>&1 || echo maven
}

# What every service needs: curl for the installs, setsid for spawn.
base_packages() {
  command -v curl >/dev/null 2>&1 || printf '%s\n' curl ca-certificates
  command -v setsid >/dev/null 2>&1 || echo util-linux
}

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
  local apt=("${SUDO[@]}" apt-get -y -q -o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)
  # shellcheck disable=SC2143 # the candidate is the output of the pipe, not its status
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
    if ! (cd "$dir" && retried mvn -B -q -ntp dependency:copy-dependencies -DoutputDirectory=jars -DincludeScope=runtime </dev/null >"$dir/mvn.log" 2>&1); then
      log "maven: fetching $name failed"
      log_tail "$dir/mvn.log"
      exit 1
    fi
    touch "$dir/.complete"
  ) 8>"$dir/.lock"
}

maven_dep() { printf '    <dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>\n' "$1" "$2" "$3"; }

# pip install into $dir/venv; $dir/.complete marks success.
pip_venv_install() { # dir requirement
  local dir="$1" requirement="$2"
  [ -f "$dir/.complete" ] && return 0
  command -v python3 >/dev/null 2>&1 || die "python3 not found"
  mkdir -p "$dir"
  (
    flock 8
    [ -f "$dir/.complete" ] && exit 0
    log "pip: installing $requirement into $dir/venv"
    rm -rf "$dir/venv"
    if ! python3 -m venv "$dir/venv" >"$dir/pip.log" 2>&1; then
      log "python3 -m venv failed (Debian: apt-get install python3-venv)"; log_tail "$dir/pip.log"; exit 1
    fi
    if ! retried "$dir/venv/bin/pip" install -q --cache-dir "$CACHE_DIR/pip" "$requirement" </dev/null >>"$dir/pip.log" 2>&1; then
      log "pip install $requirement failed"; log_tail "$dir/pip.log"; exit 1
    fi
    touch "$dir/.complete"
  ) 8>"$dir/.lock"
}

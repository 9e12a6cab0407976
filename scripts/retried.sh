# shellcheck shell=bash
# retried CMD ARGS...: a command that fetches over the network, run up to 3 times, 10 s then 30 s
# apart: a registry's or a proxy's passing error (a reset, a 502, a timeout) should not fail a run
# on a fresh machine. Sourced by scripts/test.sh, scripts/tools.sh and scripts/services/lib.sh.
retried() {
  local delay=10 try
  for try in 1 2 3; do
    "$@" && return 0
    ((try < 3)) || break
    printf 'retried: %s failed (try %d of 3); again in %d s\n' "$1" "$try" "$delay" >&2
    sleep "$delay"
    delay=$((delay * 3))
  done
  return 1
}

# shellcheck shell=bash
# retried CMD ARGS...: a command that fetches over the network, run up to 3 times, 10 s then 30 s
# apart: a registry's or a proxy's passing error (a reset, a 502, a timeout) should not fail a run
# on a fresh machine. Its standard output is that of the try that succeeded (or the last one); a try
# killed by a signal (out of memory, Ctrl-C) is not tried again; the last try's status is returned.
# Sourced by scripts/test.sh, scripts/tools.sh and scripts/services/lib.sh.
retried() {
  local delay=10 try rc out
  out=$(mktemp)
  for try in 1 2 3; do
    if "$@" >"$out"; then
      cat "$out"
      rm -f "$out"
      return 0
    else
      rc=$?
    fi
    if ((rc > 128 || try == 3)); then
      cat "$out"
      rm -f "$out"
      return "$rc"
    fi
    printf 'retried: %s failed with status %d (try %d of 3); again in %d s\n' "$1" "$rc" "$try" "$delay" >&2
    sleep "$delay"
    delay=$((delay * 3))
  done
}

# Shared by the service scripts: cache/state dirs, PID files, waiting. Source it.
set -euo pipefail
CACHE="${SOCIALSUGGEST_CACHE:-$HOME/.cache/socialsuggest}"
STATE="${SOCIALSUGGEST_HOME:-$(pwd)/var}/services"
mkdir -p "$CACHE" "$STATE"

die() { echo "$SERVICE: $*" >&2; exit 1; }
say() { echo "$SERVICE: $*"; }

pid_alive() {  # pid_alive FILE -> 0 when the PID in FILE is a live process
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

stop_pid() {  # stop_pid FILE GRACE_SECONDS: SIGTERM, wait, then SIGKILL; exactly that PID
  local file="$1" grace="$2" pid
  if ! pid_alive "$file"; then rm -f "$file"; say "not running"; return 0; fi
  pid="$(cat "$file")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 "$grace"); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  if kill -0 "$pid" 2>/dev/null; then
    say "still running after ${grace}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
  say "stopped (pid $pid)"
}

wait_for() {  # wait_for SECONDS COMMAND...: retry until COMMAND succeeds, dots as progress
  local limit="$1"; shift
  local start; start=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    [ $(( $(date +%s) - start )) -lt "$limit" ] || { echo; return 1; }
    printf '.'; sleep 1
  done
  echo
}

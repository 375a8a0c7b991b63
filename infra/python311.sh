# Sourced by infra/bootstrap.sh and infra/peers.sh: the one search for the Python 3.11
# the pins are compiled for ($PYTHON_FOR_VENV first, then python3.11, then python3).
find_python311() {
  local candidate
  for candidate in "${PYTHON_FOR_VENV:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

#!/usr/bin/env bash
# Separate venv for the peer tag models of benchmarks/tags_accuracy.py (fastText, Annif):
# Annif pins its own numpy/scikit-learn/scipy, so it cannot share .venv. Idempotent:
# skips when the stamp in the venv matches requirements-peers.txt and the python.
#   bash infra/peers.sh [VENV]     (default: <repo>/.venv-peers)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$ROOT/.venv-peers}"
REQ="$ROOT/requirements-peers.txt"
STAMP="$VENV/.requirements-peers.sha256"

die() { echo "peers.sh: $*" >&2; exit 1; }
say() { echo "peers.sh: $*"; }

[ -f "$REQ" ] || die "$REQ not found"

# The python the main venv was made with (so both venvs run the same interpreter);
# without a main venv, the same search as infra/bootstrap.sh (infra/python311.sh).
PYTHON=""
if [ -x "$ROOT/.venv/bin/python" ]; then
  PYTHON="$("$ROOT/.venv/bin/python" -c 'import sys; print(sys._base_executable)')"
else
  # shellcheck source=infra/python311.sh
  . "$ROOT/infra/python311.sh"
  PYTHON="$(find_python311 || true)"
fi
[ -n "$PYTHON" ] && [ -x "$PYTHON" ] || die "no Python 3.11 found (make the main venv first: make, or infra/bootstrap.sh; or set PYTHON_FOR_VENV)"
PY_VERSION="$("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"

WANT="$( (sha256sum "$REQ" | cut -d' ' -f1; echo "$PY_VERSION") | sha256sum | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  say "$VENV is up to date (requirements-peers.txt and Python $PY_VERSION unchanged), skipping"
  exit 0
fi

start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $PYTHON (Python $PY_VERSION)"
  "$PYTHON" -m venv "$VENV"
else
  say "$VENV exists but its stamp does not match: reinstalling"
fi
# keep the venv out of git (python 3.11's venv does not write this itself)
[ -f "$VENV/.gitignore" ] || echo '*' > "$VENV/.gitignore"

UV="$ROOT/.venv/bin/uv"
if [ -x "$UV" ]; then
  say "installing requirements-peers.txt with $($UV --version)"
  "$UV" pip install --python "$VENV/bin/python" --quiet -r "$REQ"
else
  say "installing requirements-peers.txt with pip (no uv in $ROOT/.venv)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
fi

say "checking imports"
"$VENV/bin/python" - <<'PY'
from importlib import metadata

import annif  # noqa: F401
import fasttext  # noqa: F401
import numpy
import omikuji  # noqa: F401

names = ("annif", "fasttext-numpy2", "omikuji", "numpy")
print("peers.sh: imports ok:", ", ".join(f"{n} {metadata.version(n)}" for n in names))
PY
echo "$WANT" > "$STAMP"
say "ready in $(( $(date +%s) - start ))s ($VENV)"

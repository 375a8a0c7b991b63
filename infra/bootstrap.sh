#!/usr/bin/env bash
# Create the project venv and install the pinned dependencies, cache-friendly.
# Needs only Python 3.11 and Java 17+ on the machine; says exactly what is missing.
set -euo pipefail
VENV="${1:-.venv}"
UV_VERSION="0.13.8"

die() { echo "bootstrap: $*" >&2; exit 1; }

# Python 3.11 (the pins are compiled for it)
# shellcheck source=infra/python311.sh
. "$(dirname "${BASH_SOURCE[0]}")/python311.sh"
PYTHON="$(find_python311 || true)"
[ -n "$PYTHON" ] || die "Python 3.11 not found. Install it (Debian: apt-get install python3.11 python3.11-venv; or pyenv install 3.11) or set PYTHON_FOR_VENV=/path/to/python3.11."
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || die "$PYTHON lacks venv/ensurepip. Debian: apt-get install python3.11-venv"

# Java 17+ (Spark runs on it)
if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then JAVA="$JAVA_HOME/bin/java"; else JAVA="$(command -v java || true)"; fi
[ -n "$JAVA" ] || die "Java 17+ not found (Spark needs it). Debian: apt-get install openjdk-17-jre-headless, or set JAVA_HOME."
JAVA_MAJOR="$("$JAVA" -version 2>&1 | sed -nE 's/.*version "([0-9]+).*/\1/p' | head -1)"
[ "${JAVA_MAJOR:-0}" -ge 17 ] || die "Java $JAVA_MAJOR found at $JAVA; Spark 4 needs 17+. Debian: apt-get install openjdk-17-jre-headless"

start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/uv" --version 2>/dev/null | grep -q "$UV_VERSION"; then
  "$VENV/bin/python" -m pip install --quiet "uv==$UV_VERSION"
fi
# pyspark is published only as a 450 MB source distribution. The registry proxies here answer
# every revalidation of it as "modified", so uv downloaded it twice and rebuilt it on every
# install (~40 s), and kept each build: ~1.1 GB of cache per install, which filled a 252 GB
# disk and failed CI with "No space left on device" (2026-12-07). So it is built once into a
# wheelhouse of our own, and uv takes the wheel from there (install 42 s -> 4 s, no growth).
WHEELS="${SOCIALSUGGEST_CACHE:-$HOME/.cache/socialsuggest}/wheels"
PYSPARK_PIN="$(sed -nE 's/^pyspark==([^ ;]+).*/\1/p' requirements.txt)"
[ -n "$PYSPARK_PIN" ] || die "requirements.txt pins no pyspark version"
if ! compgen -G "$WHEELS/pyspark-$PYSPARK_PIN-*.whl" >/dev/null; then
  # The build (CPU) runs beside the install of everything else (mostly download and unpack).
  echo "bootstrap: building the pyspark $PYSPARK_PIN wheel once (sdist only on PyPI) into $WHEELS"
  mkdir -p "$WHEELS"
  build="$(mktemp -d "$WHEELS/.build.XXXXXX")"
  trap 'rm -rf "$build"' EXIT
  "$VENV/bin/python" -m pip wheel --quiet --no-deps --no-cache-dir -w "$build" "pyspark==$PYSPARK_PIN" \
    >"$build/log" 2>&1 &
  build_pid=$!
  echo "bootstrap: installing the other pinned dependencies (requirements.txt)"
  "$VENV/bin/uv" pip install --python "$VENV/bin/python" --quiet -r <(grep -vE '^pyspark==' requirements.txt)
  wait "$build_pid" || { tail -20 "$build/log" >&2; die "building the pyspark $PYSPARK_PIN wheel failed (log above)"; }
  mv "$build"/pyspark-*.whl "$WHEELS"/  # whole wheels only: a failed build leaves nothing behind
fi
echo "bootstrap: installing pinned dependencies (requirements.txt)"
"$VENV/bin/uv" pip install --python "$VENV/bin/python" --quiet --find-links "$WHEELS" -r requirements.txt
"$VENV/bin/uv" pip install --python "$VENV/bin/python" --quiet --no-deps -e .
# Bytecode, compiled once here: uv installs without it, and where PYTHONDONTWRITEBYTECODE
# is set (as on the CI machines) every process would otherwise compile mlflow, airflow,
# sklearn... from source each time it starts. Measured on the 2-core CI machine
# (2026-12-06): `import mlflow.server` 8.0 s -> 3.2 s; an MLflow server healthy after
# 17.5 s -> 8.5 s of CPU. Every Airflow task, gate server and pool worker starts so.
echo "bootstrap: compiling bytecode"
"$VENV/bin/python" -m compileall -q -j 0 "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" src >/dev/null 2>&1 \
  || echo "bootstrap: some files did not compile (they are imported from source)"
echo "bootstrap: ready in $(( $(date +%s) - start ))s ($VENV)"

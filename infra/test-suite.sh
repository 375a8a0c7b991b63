#!/usr/bin/env bash
# `make test`: the whole suite, as three pytest processes side by side.
#
# Why: the suite is mostly waiting. One process used 28 minutes of CPU in 44 minutes of
# wall time on 2 cores (the e2e stack waits ~13 minutes on Airflow's scheduler, DAG
# processor and triggerer; the integration tests wait on MLflow, Spark, S3, Elasticsearch
# and Postgres), so the groups below overlap that waiting. `bash .ci/run` on a clean clone
# (2 cores, 2026-12-02): one process 46m48s; e2e beside the rest 36m01s; these three
# groups 26m10s (dags+integration 24m21s, e2e 16m18s, serving+unit 14m02s).
# With the Airflow stack's DAG reparse every 120 s instead of 30 s (2026-12-03, AMD EPYC,
# one run each, same commit otherwise): 22m26s against 26m13s (user CPU 19m49s vs 22m15s).
# Since then the suite grew until it is CPU-bound: in `bash .ci/run` on 2026-12-07 both
# cores were busy the whole run (vmstat: 0-1% idle), so the groups are balanced by how
# long each takes beside the others, and the JVMs run C1 only (tests/conftest.py).
# `bash .ci/run` on 4fa6cc5 (2026-12-07, AMD EPYC): 26m30s, the groups 23m14s (e2e +
# tags_cycle), 22m37s (dags + integration), 22m44s (serving + unit + family cycles).
# They are split so that no two processes race for a server's usual port: the tests that
# ask `pick_port` for one (S3, Elasticsearch, Postgres, the Airflow API) are all in the
# second group; the e2e stack and the serving tests take free ephemeral ports; every
# process has its own pytest temp dir and Spark session.
#
# Exit status: non-zero when any group fails. The second group streams its report; the
# others are printed after it (interleaved pytest reports would be unreadable) and kept
# in the logs this script names.
set -uo pipefail
VENV="${1:-.venv}"
PYTEST="$VENV/bin/pytest"
# test_tags_cycle (~4.5 min; its MLflow server takes a free ephemeral port) runs after the
# e2e tests, in their process: with the venv's bytecode compiled (2026-12-06, Intel Xeon,
# one run) the groups took dags+integration 15m58s, e2e 11m56s and serving+unit+tags_cycle
# 18m13s of a 21m07s CI, so the third group alone set the pace.
# The three other family cycles (~2.5 min; Spark and a free-port MLflow, no fixed port)
# run with serving and unit, which share their Spark session: on 2026-12-07 (AMD EPYC)
# dags+integration set the pace at 24m59s while serving+unit was done at 19m42s and
# e2e+tags_cycle at 22m48s.
MOVED="tests/integration/test_hashtags_cycle.py tests/integration/test_replies_cycle.py"
MOVED+=" tests/integration/test_trends_cycle.py"
GROUPS_=(
  "tests/e2e tests/integration/test_tags_cycle.py"
  "tests/dags tests/integration --ignore=tests/integration/test_tags_cycle.py --ignore=${MOVED// / --ignore=}"
  "tests/serving tests/unit $MOVED"
)
STREAMED=1  # index of the group whose report streams

# every test folder must be in a group: a new one would otherwise silently not run
for dir in tests/*/; do
  dir="${dir%/}"
  case " ${GROUPS_[*]} " in
    *" $dir "*) ;;
    *) [ -n "$(find "$dir" -name 'test_*.py' -print -quit)" ] \
         && { echo "test-suite: $dir is in no group of infra/test-suite.sh" >&2; exit 2; } ;;
  esac
done

LOGDIR="$(mktemp -d -t socialsuggest-tests.XXXXXX)"
pids=()
for i in "${!GROUPS_[@]}"; do
  [ "$i" -eq "$STREAMED" ] && { pids+=(""); continue; }
  # shellcheck disable=SC2086  # the group is a list of paths
  "$PYTEST" ${GROUPS_[$i]} -o cache_dir=".pytest_cache/group$i" >"$LOGDIR/group$i.log" 2>&1 &
  pids+=("$!")
  echo "test-suite: started ${GROUPS_[$i]} (log $LOGDIR/group$i.log)"
done
# an interrupted `make test` stops the other groups too (the e2e fixture stops its stack)
stop_all() { for p in "${pids[@]}"; do [ -n "$p" ] && kill -INT "$p" 2>/dev/null; done; wait; exit 130; }
trap stop_all INT TERM

echo "test-suite: ${GROUPS_[$STREAMED]} runs here"
# shellcheck disable=SC2086
"$PYTEST" ${GROUPS_[$STREAMED]} -o cache_dir=".pytest_cache/group$STREAMED"
codes=()
codes[STREAMED]=$?
for i in "${!GROUPS_[@]}"; do
  [ "$i" -eq "$STREAMED" ] && continue
  wait "${pids[$i]}"
  codes[i]=$?
done
trap - INT TERM

failed=0
for i in "${!GROUPS_[@]}"; do
  [ "$i" -eq "$STREAMED" ] && continue
  echo "================ ${GROUPS_[$i]} (ran beside the others; exit ${codes[$i]}) ================"
  cat "$LOGDIR/group$i.log"
done
for i in "${!GROUPS_[@]}"; do
  echo "test-suite: ${GROUPS_[$i]}: exit ${codes[$i]}"
  [ "${codes[$i]}" -eq 0 ] || failed=1
done
exit "$failed"

"""``make run ONCE=1`` (``socialsuggest stack once``) exits with the DAG run's status.

The success path (sample data → ``airflow dags test tags_daily_retrain`` → exit 0) is
what ``tests/e2e/test_make_run.py`` and ``tests/dags`` cover through the scheduler and
``dag.test()``; here the cheap failing path proves the status is propagated and that
nothing it started (MLflow) is left running.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from socialsuggest.registry.server import free_port

pytestmark = [pytest.mark.slow]
CLI = str(Path(sys.executable).with_name("socialsuggest"))


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SOCIALSUGGEST_", "MLFLOW_", "AIRFLOW"))
    }
    env["SOCIALSUGGEST_HOME"] = tempfile.mkdtemp(prefix="socialsuggest-once-")
    env["SOCIALSUGGEST_MLFLOW_PORT"] = str(free_port())
    return env


def test_a_run_that_fails_makes_once_exit_nonzero_and_stop_mlflow() -> None:
    env = _env()
    # days=0 violates the DAG's Param (minimum 1): `airflow dags test` fails the run
    once = subprocess.run(
        [CLI, "stack", "once", "--no-sample", "--conf", '{"days": 0}'],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert once.returncode != 0, once.stdout[-2000:] + once.stderr[-2000:]
    assert "days" in once.stdout + once.stderr  # the Param that was violated is named
    assert "stopped mlflow" in once.stderr
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{env['SOCIALSUGGEST_MLFLOW_PORT']}/health", timeout=2)


def test_conf_that_is_not_json_is_refused_before_anything_starts() -> None:
    once = subprocess.run(
        [CLI, "stack", "once", "--conf", "{days: 0"], env=_env(), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert once.returncode == 2
    assert "conf: not valid JSON" in once.stderr

"""Data-quality results in MLflow: a real tracking server, one run per suite result."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from socialsuggest.quality.expectations import REDACTED, SuiteResult
from socialsuggest.registry import (
    QUALITY_EXPERIMENT,
    MlflowServer,
    Registry,
    log_quality_or_warn,
    start_server,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = start_server(tmp_path_factory.mktemp("mlflow"))
    yield server
    server.stop()


def _failed_raw() -> SuiteResult:
    return SuiteResult(
        suite="raw_messages",
        success=False,
        rows=120,
        evaluated=14,
        failed=[
            {
                "expectation": "expect_column_values_to_be_in_set",
                "column": "network",
                "unexpected_count": 20,
                "unexpected_percent": 16.7,
                "observed_value": None,
                "partial_unexpected": ["myspace", "<b>x|y</b>"],
            },
            {
                "expectation": "expect_column_value_lengths_to_be_between",
                "column": "text",
                "unexpected_count": 1,
                "unexpected_percent": 0.8,
                "observed_value": None,
                "partial_unexpected": REDACTED,
                "partial_unexpected_count": 1,
            },
        ],
        window={"dt_from": "2026-10-02", "dt_to": "2026-11-01"},
        result_path="audit/quality/raw_messages/20261101T000000000000Z.json",
        orgs=3,
    )


def test_log_quality_records_a_failed_suite_as_a_readable_run(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    registry = Registry(mlflow_server.url)
    result = _failed_raw()

    logged = registry.log_quality(result, tags={"airflow.run": "tags_daily_retrain/manual-1"})

    assert mlflow.active_run() is None  # nothing left in the fluent API's state
    client = MlflowClient(tracking_uri=mlflow_server.url)
    experiment = client.get_experiment_by_name(QUALITY_EXPERIMENT)
    assert experiment is not None and experiment.experiment_id == logged.experiment_id
    assert logged.url == (
        f"{mlflow_server.url}/#/experiments/{logged.experiment_id}/runs/{logged.run_id}"
    )
    run = client.get_run(logged.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "raw_messages 2026-10-02..2026-11-01"
    assert run.data.params == {"suite": "raw_messages", "window.dt_from": "2026-10-02",
                               "window.dt_to": "2026-11-01", "orgs": "3"}  # fmt: skip
    assert run.data.metrics == {"rows": 120, "evaluated": 14, "failed": 2, "success": 0,
                                "orgs": 3}  # fmt: skip
    tags = run.data.tags
    assert tags["suite"] == "raw_messages" and tags["success"] == "false"
    assert tags["lake.result_path"] == result.result_path
    assert tags["airflow.run"] == "tags_daily_retrain/manual-1"
    assert "| expect_column_values_to_be_in_set | network | 20 |" in tags["mlflow.note.content"]
    assert "x\\|y" in tags["mlflow.note.content"]  # a pipe cannot break the table
    artifacts = {a.path for a in client.list_artifacts(logged.run_id)}
    assert artifacts == {"result.json", "failed_expectations.html"}
    local = Path(client.download_artifacts(logged.run_id, "", dst_path=str(tmp_path)))
    assert json.loads((local / "result.json").read_text()) == result.summary()
    page = (local / "failed_expectations.html").read_text()
    assert page.count("<tr>") == 3  # header + two failures
    assert "&lt;b&gt;x|y&lt;/b&gt;" in page and "<b>x" not in page  # escaped
    assert REDACTED.replace("<", "&lt;").replace(">", "&gt;") in page

    # a passing suite: the same experiment, a second run
    passed = SuiteResult(suite="processed_tags", success=True, rows=100, evaluated=9,
                         window={"dt_from": "2026-10-02", "dt_to": "2026-11-01"})  # fmt: skip
    second = registry.log_quality(passed.summary())  # a plain dict works too
    assert second.experiment_id == logged.experiment_id
    again = client.get_run(second.run_id)
    assert again.data.tags["success"] == "true" and again.data.metrics["success"] == 1
    assert {a.path for a in client.list_artifacts(second.run_id)} == {
        "result.json",
        "failed_expectations.html",
    }


def test_an_unreachable_tracking_server_only_warns_and_quickly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="socialsuggest.registry.registry"):
        logged = log_quality_or_warn("http://127.0.0.1:9", _failed_raw())
    assert logged is None
    assert time.monotonic() - started < 15  # not the client's minutes of retries
    assert "not logged to MLflow" in caplog.text and "verdict stands" in caplog.text

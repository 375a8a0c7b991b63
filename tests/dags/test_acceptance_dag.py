"""``dag.test()`` of ``serving_acceptance_daily`` on serving logs in a real lake.

The logs are written by the serving app's own writer (:class:`RequestLog`) for a
fixed day; no registry runs (the job warns and still reports), so the DAG run is
quick. A day above the floor succeeds; the same day held to a stricter minimum fails
the run at once (no retry), with an alert naming the error type.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from socialsuggest.config import load_settings
from socialsuggest.lake import Lake
from socialsuggest.serving import RequestLog

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 10, 5)
ORG = "dag-acceptance-org"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Tasks run in this process under dag.test(): they read settings from the env."""
    for name in [n for n in os.environ if n.startswith(("SOCIALSUGGEST_", "MLFLOW_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SOCIALSUGGEST_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # no registry
    return tmp_path / "var"


def _serve_day(lake: Lake) -> None:
    """10 requests of 2 model suggestions each; 3 feedbacks accept one tag: 3 / 20."""
    at = datetime(DAY.year, DAY.month, DAY.day, 12, tzinfo=UTC)
    with RequestLog(lake) as request_log:
        for i in range(10):
            request_log.log_tag_request(
                request_id=f"r{i}", org=ORG, text="where is my order", network="twitter",
                message_type="mention", k=2, model_version=4, latency_ms=3.0, received_at=at,
                suggestions=[{"tag": "billing", "score": 0.9, "source": "model"},
                             {"tag": "shipping", "score": 0.5, "source": "model"}],
            )  # fmt: skip
        for i in range(3):
            request_log.log_feedback(
                request_id=f"r{i}", org=ORG, accepted=["shipping"], received_at=at
            )


def _dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "serving_acceptance_daily.py"))
    assert bag.import_errors == {}
    return bag.get_dag("serving_acceptance_daily")


def test_acceptance_dag_reports_the_day_and_fails_below_the_floor_without_retries(
    airflow_db: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = Lake.from_settings(load_settings())
    _serve_day(lake)
    report_key = f"audit/acceptance/{DAY.isoformat()}.json"
    monkeypatch.setenv("SOCIALSUGGEST_ACCEPTANCE_MIN_SHOWN", "21")  # 20 shown: not judged

    passed = _dag().test(run_conf={"day": DAY.isoformat()})

    assert passed.state == "success"
    report = json.loads(lake.storage.get(report_key))
    assert (report["shown"], report["accepted"], report["passed"]) == (20, 3, True)
    assert report["orgs"][ORG]["rate"] == pytest.approx(0.15)
    assert report["rows"] == [
        {"org": ORG, "model_version": 4, "source": "model", "shown": 20, "accepted": 3,
         "rate": 0.15, "ci95_low": report["rows"][0]["ci95_low"],
         "ci95_high": report["rows"][0]["ci95_high"]},
    ]  # fmt: skip

    monkeypatch.setenv("SOCIALSUGGEST_ACCEPTANCE_MIN_SHOWN", "20")  # now judged: 0.15 < 0.3

    failed = _dag().test(run_conf={"day": DAY.isoformat()})

    assert failed.state == "failed"
    (ti,) = failed.get_task_instances()
    assert (ti.task_id, ti.state, ti.try_number) == ("report", "failed", 1)  # not retried
    alerts = [json.loads(line) for line in (home / "alerts" / "failures.jsonl").open()]
    assert alerts[-1]["dag_id"] == "serving_acceptance_daily"
    assert alerts[-1]["error_type"] == "AirflowFailException"
    assert json.loads(lake.storage.get(report_key))["below_floor"] == [ORG]

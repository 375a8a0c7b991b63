"""DAG files: they import cleanly and fast, carry retries and tags, have no cycles."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXPECTED = {
    "gdpr_forget",
    "gdpr_catalog_index",
    "lake_retention",
    "model_promote",
    "model_rollback",
    "serving_acceptance_daily",
    "tags_daily_retrain",
    "hashtags_daily_retrain",
    "replies_daily_retrain",
    "trends_hourly",
}


@pytest.fixture(scope="module")
def dagbag(airflow_db: Path):  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_every_dag_imports_without_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) >= EXPECTED


def test_every_task_retries_and_every_dag_is_tagged_and_documented(dagbag) -> None:  # type: ignore[no-untyped-def]
    for dag_id in EXPECTED:
        dag = dagbag.get_dag(dag_id)
        assert dag.tags, dag_id
        assert dag.doc_md, dag_id
        assert dag.catchup is False, dag_id
        for task in dag.tasks:
            assert task.retries >= 2, f"{dag_id}.{task.task_id}"
            assert task.on_failure_callback, f"{dag_id}.{task.task_id}"


def test_the_reply_retrain_runs_on_the_tag_retrains_validated_messages(dagbag) -> None:  # type: ignore[no-untyped-def]
    """Replies read ``processed/tags``: on the clock they raced the tag preprocess (first
    day: nothing to train on; later days: yesterday's messages)."""
    from airflow.sdk import Asset

    from socialsuggest.family_dag import PROCESSED_MESSAGES

    replies = dagbag.get_dag("replies_daily_retrain")
    assert type(replies.timetable).__name__ == "AssetTriggeredTimetable"
    assert replies.timetable.asset_condition.objects == (PROCESSED_MESSAGES,)
    producers = [
        t.task_id
        for t in dagbag.get_dag("tags_daily_retrain").tasks
        if any(isinstance(o, Asset) and o == PROCESSED_MESSAGES for o in t.outlets)
    ]
    assert producers == ["validate_processed"]


@pytest.mark.parametrize("dag_file", sorted(p.name for p in (REPO / "dags").glob("*.py")))
def test_dag_files_import_nothing_heavy_at_top_level(dag_file: str) -> None:
    """The scheduler parses DAG files every few seconds: Spark, MLflow, sklearn, pandas
    and pyarrow must only be imported inside tasks."""
    code = (
        "import sys, time, runpy, airflow.sdk; t = time.perf_counter(); "
        f"runpy.run_path({str(REPO / 'dags' / dag_file)!r}); "
        "heavy = sorted(m for m in ('pyspark', 'mlflow', 'sklearn', 'pandas', 'pyarrow', "
        "'elasticsearch') if m in sys.modules); "
        "print(repr((heavy, time.perf_counter() - t)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    heavy, seconds = eval(done.stdout.strip().splitlines()[-1])
    assert heavy == [], f"{dag_file} imports {heavy} at parse time"
    print(f"{dag_file}: {seconds:.2f}s on top of airflow.sdk")  # the import-time measurement


def test_dags_pass_airflow3_lint() -> None:
    ruff = Path(sys.executable).parent / "ruff"
    done = subprocess.run([str(ruff), "check", "--select", "AIR3", str(REPO / "dags")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("dag_file", ["hashtags_daily_retrain.py", "replies_daily_retrain.py"])
def test_the_family_dags_name_functions_that_exist(
    dag_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shared retrain DAG takes its train and orgs functions as "module:function"
    strings (imported only when a task runs, to keep parsing light): a typo would pass
    parsing and fail the first scheduled run, so resolve every one here."""
    import importlib.util

    import socialsuggest.family_dag as family_dag

    calls: list[dict[str, str]] = []
    monkeypatch.setattr(family_dag, "per_org_retrain", lambda **kw: calls.append(kw))
    spec = importlib.util.spec_from_file_location(
        f"check_{dag_file[:-3]}", REPO / "dags" / dag_file
    )
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert len(calls) == 1
    for key in ("all_orgs", "train"):
        assert callable(family_dag._resolve(calls[0][key])), calls[0][key]

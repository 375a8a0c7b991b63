"""DAG files: they import cleanly and fast, carry retries and tags, have no cycles."""

from __future__ import annotations

import json
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


DAG_FILES = sorted(p.name for p in (REPO / "dags").glob("*.py"))
HEAVY = ("pyspark", "mlflow", "sklearn", "pandas", "pyarrow", "elasticsearch")
# One interpreter imports airflow.sdk once, then forks a child per DAG file: each child
# starts from the same clean state (what the DAG processor's parse sees), so one file's
# imports cannot hide another's, at a tenth of the CPU of an interpreter per file.
_PARSE_EACH = """
import json, os, runpy, sys, time
import airflow.sdk
for path in sys.argv[1:]:
    read, write = os.pipe()
    if os.fork() == 0:
        os.close(read)
        t = time.perf_counter()
        try:
            runpy.run_path(path)
            out = {"heavy": sorted(m for m in HEAVY if m in sys.modules),
                   "seconds": time.perf_counter() - t}
        except BaseException as e:
            out = {"error": f"{type(e).__name__}: {e}"}
        os.write(write, json.dumps(out).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        result = pipe.read()
    os.wait()
    print(json.dumps({os.path.basename(path): json.loads(result)}))
"""


@pytest.fixture(scope="module")
def parsed_alone() -> dict[str, dict[str, object]]:
    """Each DAG file parsed on top of airflow.sdk alone: its heavy imports and time."""
    code = f"HEAVY = {HEAVY!r}\n{_PARSE_EACH}"
    done = subprocess.run(
        [sys.executable, "-c", code, *(str(REPO / "dags" / f) for f in DAG_FILES)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    results: dict[str, dict[str, object]] = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            results.update(json.loads(line))
    return results


@pytest.mark.parametrize("dag_file", DAG_FILES)
def test_dag_files_import_nothing_heavy_at_top_level(
    dag_file: str, parsed_alone: dict[str, dict[str, object]]
) -> None:
    """The scheduler parses DAG files every few seconds: Spark, MLflow, sklearn, pandas
    and pyarrow must only be imported inside tasks."""
    result = parsed_alone[dag_file]
    assert "error" not in result, f"{dag_file} does not parse: {result.get('error')}"
    assert result["heavy"] == [], f"{dag_file} imports {result['heavy']} at parse time"
    print(f"{dag_file}: {result['seconds']:.2f}s on top of airflow.sdk")  # the measurement


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

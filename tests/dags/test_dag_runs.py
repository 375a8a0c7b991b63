"""End-to-end ``dag.test()`` runs of the operator DAGs on real data and a real registry."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from socialsuggest.config import load_settings
from socialsuggest.ingest import ingest_events
from socialsuggest.lake import Lake
from socialsuggest.privacy import open_privacy

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Tasks run in this process under dag.test(): they read settings from the env."""
    for name in [n for n in os.environ if n.startswith(("SOCIALSUGGEST_", "MLFLOW_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SOCIALSUGGEST_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # no registry
    return tmp_path / "var"


def _dag(dagbag_dir: Path, dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dagbag_dir / f"{dag_id}.py"))
    assert bag.import_errors == {}
    return bag.get_dag(dag_id)


def _messages(authors: list[str]) -> list[dict[str, Any]]:
    return [
        {"event_type": "message", "message_id": f"m{i}", "org_id": "acme",
         "network": "twitter", "message_type": "mention", "author_id": author,
         "text": f"message {i}", "created_at": f"2026-10-{1 + i % 9:02d}T12:00:00Z",
         "tags": [{"tag": "billing", "applied_by": "agent-1"}]}
        for i, author in enumerate(authors)
    ]  # fmt: skip


def test_gdpr_forget_dag_erases_the_subject_and_records_the_requester(
    airflow_db: Path, home: Path
) -> None:
    lake = Lake.from_settings(load_settings())
    ingest_events(lake, _messages(["u-gone"] * 5 + ["u-stays"] * 7))
    dag = _dag(REPO / "dags", "gdpr_forget")
    run = dag.test(
        run_conf={"subject_id": "u-gone", "reason": "ticket 42", "requester": "dpo@example"}
    )
    assert run.state == "success"
    raw = lake.read([f.key for f in lake.files("raw", "messages")])
    assert Counter(raw.column("author_id").to_pylist()) == {"u-stays": 7}
    (journal,) = open_privacy(load_settings()).requests()
    assert journal.done and journal.rows_removed == 5
    assert journal.reason == "ticket 42 (requested by dpo@example)"
    assert "u-gone" not in journal.to_json().decode()


def test_gdpr_forget_dag_refuses_a_conf_that_violates_its_params(
    airflow_db: Path, home: Path
) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    dag = _dag(REPO / "dags", "gdpr_forget")
    with pytest.raises(ParamValidationError):
        dag.test(run_conf={"subject_id": "", "reason": "ticket 42", "requester": "dpo"})


def test_lake_retention_and_catalog_index_dags_run(airflow_db: Path, home: Path) -> None:
    lake = Lake.from_settings(load_settings())
    ingest_events(lake, _messages(["u-1", "u-2", "u-3"]))
    index = _dag(REPO / "dags", "gdpr_catalog_index").test()
    assert index.state == "success"
    privacy = open_privacy(load_settings())
    assert privacy.catalog.count() == len(lake.files("raw")) and not lake.outbox_files()
    purge = _dag(REPO / "dags", "lake_retention").test(run_conf={"older_than_days": 1})
    assert purge.state == "success"
    assert lake.files("raw") == []
    (journal,) = privacy.requests()
    assert journal.kind == "retention" and journal.rows_removed == 3


@pytest.fixture(scope="module")
def registry_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from socialsuggest.registry.server import start_server

    server = start_server(tmp_path_factory.mktemp("mlflow"))
    yield server.url
    server.stop()


def _register(uri: str, name: str, passed: list[bool]) -> None:
    """Versions registered straight through MLflow (no training: the DAG moves aliases)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    client.create_registered_model(name)
    experiment = client.create_experiment("dag-tests")
    for ok in passed:
        run = client.create_run(experiment)
        client.create_model_version(
            name,
            source=f"{run.info.artifact_uri}/model",
            run_id=run.info.run_id,
            tags={"gate.passed": str(ok).lower()},
        )


def test_model_promote_and_rollback_dags_move_production(
    airflow_db: Path, home: Path, registry_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from socialsuggest.registry import Registry

    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry_uri)
    _register(registry_uri, "tags.dag-test-org", [True, True, False])
    registry = Registry(registry_uri)
    conf = {"family": "tags", "org": "dag-test-org", "reason": "test run", "requester": "ops"}
    assert _dag(REPO / "dags", "model_promote").test(run_conf={**conf, "version": 1}).state == (
        "success"
    )
    assert _dag(REPO / "dags", "model_promote").test(run_conf={**conf, "version": 2}).state == (
        "success"
    )
    assert registry.version_by_alias("tags.dag-test-org", "production").version == 2  # type: ignore[union-attr]
    rollback = _dag(REPO / "dags", "model_rollback").test(run_conf=conf)
    assert rollback.state == "success"
    assert registry.version_by_alias("tags.dag-test-org", "production").version == 1  # type: ignore[union-attr]
    moves = registry.alias_history("tags.dag-test-org")
    assert moves[-1]["actor"] == "ops" and moves[-1]["reason"].startswith("rollback:")
    # a version the gates rejected cannot be promoted: the run fails, production stays
    failed = _dag(REPO / "dags", "model_promote").test(run_conf={**conf, "version": 3})
    assert failed.state == "failed"
    alerts = [json.loads(line) for line in (home / "alerts" / "failures.jsonl").open()]
    assert alerts[-1]["dag_id"] == "model_promote" and alerts[-1]["task_id"] == "promote"
    assert alerts[-1]["error_type"] == "RegistryError"
    assert registry.version_by_alias("tags.dag-test-org", "production").version == 1  # type: ignore[union-attr]


def test_tags_daily_retrain_trains_and_promotes_and_a_failing_suite_stops_it(
    airflow_db: Path,
    home: Path,
    registry_uri: str,
    monkeypatch: pytest.MonkeyPatch,
    datasets_dir: Path,
) -> None:
    from datetime import date

    import pyarrow as pa

    from socialsuggest.events.schemas import MessageV1
    from socialsuggest.ingest import ingest_paths
    from socialsuggest.registry import Registry
    from socialsuggest.sampledata import generate

    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry_uri)
    monkeypatch.setenv("SOCIALSUGGEST_SPARK_MASTER", "local[2]")
    end = date(2026, 11, 1)
    generate(home / "sample", datasets_dir=datasets_dir, orgs=2, messages=1200, days=8,
             end=end, seed=5, invalid_rate=0.0)  # fmt: skip
    lake = Lake.from_settings(load_settings())
    ingest_paths(lake, [home / "sample"])
    dag = _dag(REPO / "dags", "tags_daily_retrain")
    conf = {"dt_to": end.isoformat(), "days": 30}

    run = dag.test(run_conf=conf)

    assert run.state == "success"
    registry = Registry(registry_uri)
    orgs = sorted({f.org for f in lake.files("processed", "tags")})
    production = {org: registry.version_by_alias(f"tags.{org}", "production") for org in orgs}
    assert orgs and all(v is not None for v in production.values())
    assert list(lake.storage.iter_objects("audit/quality/raw_messages/"))

    # an upstream writer delivers a day the raw suite refuses (an unknown network)
    bad = lake.read_file(lake.files("raw", "messages")[0].key).to_pylist()[:20]
    for row in bad:
        row["network"] = "myspace"
    table = pa.Table.from_pylist(bad, schema=MessageV1.arrow_schema())
    lake.write("raw", "messages", end, orgs[0], table, {r["author_id"] for r in bad})
    versions_before = {org: len(registry.versions(f"tags.{org}")) for org in orgs}

    failed = dag.test(run_conf=conf)

    assert failed.state == "failed"
    states = {ti.task_id: ti.state for ti in failed.get_task_instances()}
    assert states["validate_raw"] == "failed"
    assert states["preprocess"] != "success" and states.get("train_batch") != "success"
    for org in orgs:
        now = registry.version_by_alias(f"tags.{org}", "production")
        assert now is not None and now.version == production[org].version  # type: ignore[union-attr]
        assert len(registry.versions(f"tags.{org}")) == versions_before[org]
    results = sorted(i.key for i in lake.storage.iter_objects("audit/quality/raw_messages/"))
    assert '"success": false' in lake.storage.get(results[-1]).decode()
    _assert_quality_runs_in_mlflow(registry_uri, results)


def _assert_quality_runs_in_mlflow(uri: str, raw_results: list[str]) -> None:
    """Each suite's result is an MLflow run, the failing one logged before the gate raised."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("data-quality")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time"])
    verdicts = [(r.data.tags["suite"], r.data.tags["success"]) for r in runs]
    # the first DAG run passed both suites, the second stopped at the raw one
    assert ("raw_messages", "true") in verdicts and ("processed_tags", "true") in verdicts
    failing = [r for r in runs if r.data.tags["suite"] == "raw_messages"
               and r.data.tags["success"] == "false"]  # fmt: skip
    assert failing and failing[-1].data.tags["lake.result_path"] == raw_results[-1]
    assert failing[-1].data.metrics["success"] == 0 and failing[-1].data.metrics["failed"] >= 1
    assert failing[-1].data.tags["airflow.run"].startswith("tags_daily_retrain/")
    artifacts = {a.path for a in client.list_artifacts(failing[-1].info.run_id)}
    assert {"result.json", "failed_expectations.html"} <= artifacts
    assert "expect_column_values_to_be_in_set" in failing[-1].data.tags["mlflow.note.content"]

"""PostgreSQL from infra/postgres.sh as MLflow's backend store (the services profile)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from mlflow.tracking import MlflowClient

from servers import pick_port
from socialsuggest.lake import S3Storage
from socialsuggest.registry import start_server

REPO = Path(__file__).resolve().parents[2]
#: Preferred port (another when taken): clear of a developer's `make services-up` cluster on 5432.
PORT = 25432
PASSWORD = "test-only-password"

pytestmark = pytest.mark.services  # real servers started by infra/ scripts


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("pghome")
    for path in (home, *home.parents):  # the postgres user must reach its data dir
        if str(path).startswith("/tmp/pytest-of-"):
            path.chmod(path.stat().st_mode | 0o011)
    port = pick_port(PORT)
    env = {**os.environ, "SOCIALSUGGEST_PG_PORT": str(port), "SOCIALSUGGEST_HOME": str(home),
           "SOCIALSUGGEST_PG_PASSWORD": PASSWORD}  # fmt: skip
    script = str(REPO / "infra" / "postgres.sh")
    up = subprocess.run(
        ["bash", script, "up"], env=env, capture_output=True, text=True, timeout=300
    )
    assert up.returncode == 0, up.stdout + up.stderr
    yield f"postgresql://socialsuggest:{PASSWORD}@127.0.0.1:{port}"
    down = subprocess.run(
        ["bash", script, "down"], env=env, capture_output=True, text=True, timeout=120
    )
    assert down.returncode == 0, down.stdout + down.stderr
    status = subprocess.run(["bash", script, "status"], env=env, capture_output=True, text=True)
    assert status.returncode == 3  # stopped


def test_mlflow_on_postgres_with_s3_artifacts(
    postgres: str,
    s3_endpoint: str,
    s3_credentials: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The services profile's MLflow: Postgres metadata, artifacts proxied to S3."""
    for name, value in s3_credentials.items():
        monkeypatch.setenv(name, value)  # the server process reads them
    server = start_server(
        tmp_path / "mlflow",
        backend_store_uri=f"{postgres}/mlflow",
        artifacts_destination="s3://socialsuggest/mlflow-artifacts",
        s3_endpoint_url=s3_endpoint,
    )
    try:
        client = MlflowClient(tracking_uri=server.url)
        experiment = client.create_experiment("pg-smoke")
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "hybrid.ndcg_at_3", 0.61)
        report = tmp_path / "tag_report.csv"
        report.write_text("tag,auc\nbread,0.91\n")
        client.log_artifact(run.info.run_id, str(report))  # through the server's proxy
        client.create_registered_model("tags.pgorg")
        version = client.create_model_version(
            "tags.pgorg", f"runs:/{run.info.run_id}/model", run.info.run_id
        )
        client.set_registered_model_alias("tags.pgorg", "production", version.version)
        assert (
            client.get_model_version_by_alias("tags.pgorg", "production").version == version.version
        )
    finally:
        server.stop()
    with psycopg.connect(f"{postgres}/mlflow") as conn, conn.cursor() as cursor:
        cursor.execute("SELECT name FROM registered_models")
        assert cursor.fetchall() == [("tags.pgorg",)]
        cursor.execute("SELECT alias, version FROM registered_model_aliases")
        assert cursor.fetchall() == [("production", 1)]
    storage = S3Storage("s3://socialsuggest/mlflow-artifacts", endpoint_url=s3_endpoint)
    stored = [o.key for o in storage.iter_objects() if o.key.endswith("tag_report.csv")]
    assert len(stored) == 1 and storage.get(stored[0]) == report.read_bytes()
    with psycopg.connect(f"{postgres}/airflow") as conn, conn.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == ("socialsuggest",)

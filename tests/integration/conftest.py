"""Integration fixtures: ONE SparkSession, S3 store and Elasticsearch node per test run.

Their ports are picked at run time (the usual test port when free, see
``tests/servers.py``): a store or node a killed run left behind must not fail the next.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servers import pick_port
from socialsuggest.catalog import Catalog, open_catalog
from socialsuggest.config import load_settings

REPO = Path(__file__).resolve().parents[2]
#: Preferred S3 port: clear of a developer's own store on 8333.
S3_PORT = 28333
#: The S3 port and the ports infra/s3.sh derives from it (master, volume, filer), each
#: with a gRPC port 10000 above: all must be free.
S3_PORT_OFFSETS = (0, 100, 200, 300, 10000, 10100, 10200, 10300)
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "socialsuggest-test", "AWS_SECRET_ACCESS_KEY": "test-secret"}


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3-compatible store (SeaweedFS via infra/s3.sh) for the whole run."""
    port = pick_port(S3_PORT, offsets=S3_PORT_OFFSETS)
    env = {**os.environ, **S3_CREDENTIALS, "SOCIALSUGGEST_S3_PORT": str(port),
           "SOCIALSUGGEST_HOME": str(tmp_path_factory.mktemp("s3home"))}  # fmt: skip
    script = str(REPO / "infra" / "s3.sh")
    up = subprocess.run(
        ["bash", script, "up"], env=env, capture_output=True, text=True, timeout=300
    )
    assert up.returncode == 0, up.stdout + up.stderr
    yield up.stdout.strip().splitlines()[-1]
    subprocess.run(["bash", script, "down"], env=env, capture_output=True, timeout=60, check=True)


@pytest.fixture(scope="session")
def s3_credentials() -> dict[str, str]:
    """The store's credentials, for tests to put into the environment boto3 reads."""
    return dict(S3_CREDENTIALS)


#: Preferred Elasticsearch HTTP port: clear of a developer's `make services-up` node on 9200.
ES_PORT = 29200


@pytest.fixture(scope="session")
def es_env() -> Iterator[dict[str, str]]:
    """Environment of infra/elasticsearch.sh, with the node's home OUTSIDE pytest's tmp root.

    Run as root, the script starts ES as an unprivileged user, which must traverse its
    home. pytest resets ``/tmp/pytest-of-<user>`` to mode 700 whenever any pytest session
    starts, so a home under it loses access mid-run (shards fail, the node stalls).
    """
    home = Path(tempfile.mkdtemp(prefix="socialsuggest-es-test-"))
    home.chmod(0o755)  # the unprivileged ES user must traverse it
    port = str(pick_port(ES_PORT))
    yield {**os.environ, "SOCIALSUGGEST_ES_PORT": port, "SOCIALSUGGEST_HOME": str(home)}
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def es_url(es_env: dict[str, str]) -> Iterator[str]:
    """A real Elasticsearch (infra/elasticsearch.sh) for the whole run (start-up 30-60 s)."""
    script = str(REPO / "infra" / "elasticsearch.sh")
    up = subprocess.run(
        ["bash", script, "up"], env=es_env, capture_output=True, text=True, timeout=600
    )
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    yield f"http://127.0.0.1:{es_env['SOCIALSUGGEST_ES_PORT']}"
    down = subprocess.run(
        ["bash", script, "down"], env=es_env, capture_output=True, text=True, timeout=120
    )
    assert down.returncode == 0, down.stdout + down.stderr


@pytest.fixture(
    params=["sqlite", pytest.param("elasticsearch", marks=pytest.mark.services)],
)
def catalog_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Settings overrides selecting one catalog backend (the same tests run on each)."""
    if request.param == "sqlite":
        yield {"catalog_url": f"sqlite:///{tmp_path}/catalog.sqlite"}
        return
    from elasticsearch import Elasticsearch

    from socialsuggest.catalog.elastic import template_name

    url: str = request.getfixturevalue("es_url")
    index = f"lake-objects-test-{uuid.uuid4().hex[:8]}"
    yield {"catalog_url": url, "catalog_index": index}
    with Elasticsearch(url, request_timeout=30) as es:
        es.options(ignore_status=404).indices.delete(index=index)
        es.options(ignore_status=404).indices.delete_index_template(name=template_name(index))


@pytest.fixture
def catalog(catalog_settings: dict[str, Any], tmp_path: Path) -> Iterator[Catalog]:
    """An open catalog on the backend ``catalog_settings`` selects, closed afterwards."""
    opened = open_catalog(load_settings(home=tmp_path, **catalog_settings))
    yield opened
    opened.close()


# ---- one home, lake, MLflow server and registry for the model-family modules ------------
# Session-scoped: the hashtags, replies and trends modules run on one sample (3 orgs,
# 4,500 messages, 14 days, seed 11: generated once; re-ingesting it adds nothing) and one
# registry (their model names never collide), which saves each later module a server
# start, a sample and a Spark job. Each module still works alone: it runs what it needs.
@pytest.fixture(scope="session")
def family_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("families")


@pytest.fixture(scope="session")
def family_mlflow(family_home: Path) -> Iterator[Any]:
    from socialsuggest.registry import start_server

    server = start_server(family_home / "mlflow")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def family_settings(family_home: Path, family_mlflow: Any) -> Any:
    return load_settings(
        home=family_home, mlflow_tracking_uri=family_mlflow.url, spark_master="local[2]"
    )


@pytest.fixture(scope="session")
def family_registry(family_mlflow: Any) -> Any:
    """One for the session: a Registry talks to its own server only (it leaves MLflow's
    process-wide tracking URI alone), so registries other modules create in between,
    on servers they have since stopped, cannot redirect it."""
    from socialsuggest.registry import Registry

    return Registry(family_mlflow.url)

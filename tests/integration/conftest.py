"""Integration fixtures: ONE SparkSession for the whole test run (start-up ~10 s)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from socialsuggest.config import load_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    from socialsuggest.processing.spark import get_spark, stop_spark

    session = get_spark(load_settings(spark_master="local[2]"))
    yield session
    stop_spark()


REPO = Path(__file__).resolve().parents[2]
S3_PORT = "28333"  # + its derived ports: clear of a developer's own store on 8333
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "socialsuggest-test", "AWS_SECRET_ACCESS_KEY": "test-secret"}


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3-compatible store (SeaweedFS via infra/s3.sh) for the whole run."""
    env = {**os.environ, **S3_CREDENTIALS, "SOCIALSUGGEST_S3_PORT": S3_PORT,
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

"""Shared fixtures: real corpora, an isolated home per test, one small sample set."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from socialsuggest.config import Settings, load_settings
from socialsuggest.lake import Lake
from socialsuggest.sampledata import Manifest, generate

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SAMPLE_END = date(2026, 11, 1)

# The suite's JVMs are short-lived (a Spark session per pytest process, per CLI subprocess
# and per Airflow task of the e2e stack): C1 only. A Spark session that starts and runs
# one small job used 27 s of CPU instead of 45 s (C2 compiling code it would never run
# long enough to need), and `make test` is CPU-bound on 2 cores.
# Spark's launcher reads SPARK_SUBMIT_OPTS; outside the SOCIALSUGGEST_ names that tests
# clear, so the stack's tasks inherit it too. Tuning only: no test depends on it.
os.environ.setdefault("SPARK_SUBMIT_OPTS", "-XX:TieredStopAtLevel=1")


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """ONE SparkSession per test run (10 s to start): shared by every suite that needs it."""
    from socialsuggest.processing.spark import get_spark, stop_spark

    session = get_spark(load_settings(spark_master="local[2]"))
    yield session
    stop_spark()


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    return load_settings().resolved_datasets_dir


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("SOCIALSUGGEST_HOME", "SOCIALSUGGEST_LAKE_ROOT", "SOCIALSUGGEST_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    return load_settings(home=tmp_path / "var")


@pytest.fixture
def lake(settings: Settings) -> Lake:
    return Lake.from_settings(settings)


@pytest.fixture(scope="session")
def small_sample(
    tmp_path_factory: pytest.TempPathFactory, datasets_dir: Path
) -> tuple[Path, Manifest]:
    """4 orgs, 3,000 messages over 10 days, with deliberately corrupted records."""
    out = tmp_path_factory.mktemp("sample")
    manifest = generate(
        out,
        datasets_dir=datasets_dir,
        orgs=4,
        messages=3000,
        days=10,
        end=SAMPLE_END,
        seed=7,
        invalid_rate=0.02,
    )
    return out, manifest

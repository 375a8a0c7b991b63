"""Integration fixtures: ONE SparkSession for the whole test run (start-up ~10 s)."""

from __future__ import annotations

from collections.abc import Iterator
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

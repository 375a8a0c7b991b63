"""One SparkSession per process, configured the same way for CLI, DAG tasks and tests.

Starting a JVM costs ~10 s, so every caller shares the session ``builder.getOrCreate``
returns; the settings only decide the master URL. Local defaults are tuned for small,
many-partition jobs: few shuffle partitions (the default 200 would make hundreds of
near-empty tasks per stage), UTC session time (``dt`` partitions are UTC days), Arrow
for pandas exchange and no UI (nothing listens on ports in CI).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from socialsuggest.config import Settings, load_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

APP_NAME = "socialsuggest"
LOCAL_SHUFFLE_PARTITIONS = 4
_SESSIONS: list[SparkSession] = []  # the session get_spark made, for stop_spark


def _is_local(master: str) -> bool:
    return master.startswith("local")


#: pyspark 4.3 ships Hadoop client 3.5.0; hadoop-aws must match it (it brings the AWS SDK
#: v2 bundle, 686 MB, so the Ivy cache lives with the other downloads and is reused).
HADOOP_AWS = "org.apache.hadoop:hadoop-aws:3.5.0"


def s3a_conf(endpoint: str = "") -> dict[str, str]:
    """Spark settings for ``s3a://`` lake paths (verified against SeaweedFS 4.48).

    Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, never from here;
    on a cluster the executors need those variables too.
    """
    cache = Path(os.environ.get("SOCIALSUGGEST_CACHE", Path.home() / ".cache" / "socialsuggest"))
    conf = {
        "spark.jars.packages": HADOOP_AWS,
        "spark.jars.ivy": str(cache / "ivy"),
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider"
        ),
        "spark.hadoop.fs.s3a.endpoint.region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    }
    if endpoint:  # an S3-compatible store: path-style (bucket.localhost does not resolve)
        conf |= {
            "spark.hadoop.fs.s3a.endpoint": endpoint,
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": str(endpoint.startswith("https")).lower(),
        }
    return conf


def session_of(spark: SparkSession | Callable[[], SparkSession]) -> SparkSession:
    """The session itself, or the one a factory makes: preprocessing takes a factory so
    that a run with nothing to process never starts a JVM."""
    return spark() if callable(spark) else spark


class HadoopFolder:
    """A folder through a Spark session's Hadoop file system (``file:`` or ``s3a:``), for
    what Spark wrote there: its own ``_SUCCESS`` and checksum files included, which the
    lake's listing does not show."""

    def __init__(self, spark: SparkSession, path: str) -> None:
        jvm = spark.sparkContext._jvm
        assert jvm is not None, "a classic (not Spark Connect) session has a JVM gateway"
        self._hadoop = jvm.org.apache.hadoop.fs
        self._path = self._hadoop.Path(path)
        self._fs = self._path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())

    def subfolders(self) -> list[str]:
        """The names directly under the folder (none if it does not exist)."""
        if not self._fs.exists(self._path):
            return []
        return [str(s.getPath().getName()) for s in self._fs.listStatus(self._path)]

    def delete(self, name: str) -> None:
        """Delete ``name`` under the folder, and everything in it.

        Checked, and emptied folders deleted too: through s3a, SeaweedFS (the S3 store
        the tests and ``make run PROFILE=services`` use) deletes a folder's objects but
        keeps the folder's entry and those of its subfolders (Spark's ``_temporary``),
        which listings then show as folders; deleting each again, innermost first,
        removes them. On other stores the check costs one request."""
        self._delete(self._hadoop.Path(self._path, name))

    def _delete(self, path: Any) -> None:
        self._fs.delete(path, True)
        if self._fs.exists(path):
            for child in self._fs.listStatus(path):
                self._delete(child.getPath())
            self._fs.delete(path, True)


def get_spark(settings: Settings | None = None, *, driver_memory: str = "1g") -> SparkSession:
    """The process-wide session; created on first call, reused afterwards."""
    from pyspark.sql import SparkSession

    settings = settings or load_settings()
    master = settings.spark_master or "local[*]"
    if _is_local(master):
        # Python workers must run the interpreter that has socialsuggest installed.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(master)
        .appName(APP_NAME)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.pyspark.fallback.enabled", "false")
        .config("spark.driver.memory", driver_memory)
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
    )
    if settings.lake_root.startswith("s3://"):
        for key, value in s3a_conf(settings.s3_endpoint_url).items():
            builder = builder.config(key, value)
    if _is_local(master):
        builder = builder.config("spark.sql.shuffle.partitions", str(LOCAL_SHUFFLE_PARTITIONS))
        builder = builder.config("spark.default.parallelism", str(LOCAL_SHUFFLE_PARTITIONS))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    _SESSIONS[:] = [spark]
    logger.info("spark session ready (master=%s, version=%s)", master, spark.version)
    return spark


def stop_spark() -> None:
    """Stop the shared session if one is running (tests and CLI exit call this)."""
    while _SESSIONS:
        _SESSIONS.pop().stop()

"""The lake on a real S3-compatible store (SeaweedFS started by infra/s3.sh)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from socialsuggest.ingest import ingest_paths
from socialsuggest.lake import Lake, ObjectExistsError, S3Storage
from socialsuggest.sampledata import Manifest
from socialsuggest.training.fanout import run_folder

pytestmark = pytest.mark.services  # real servers started by infra/ scripts


@pytest.fixture
def s3_lake(
    s3_endpoint: str,
    s3_credentials: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Lake:
    for name, value in s3_credentials.items():
        monkeypatch.setenv(name, value)
    prefix = request.node.name.replace("[", "-").replace("]", "")
    return Lake(S3Storage(f"s3://socialsuggest/{prefix}", endpoint_url=s3_endpoint))


def test_write_list_read_replace_delete_on_s3(s3_lake: Lake) -> None:
    table = pa.table({"id": [1, 2, 3], "author_id": ["a", "b", "a"]})
    obj = s3_lake.write("raw", "messages", date(2026, 1, 2), "acme", table, {"a", "b"})
    assert obj.path.startswith("raw/messages/dt=2026-01-02/org=acme/part-")
    assert [p.key for p in s3_lake.files("raw", "messages")] == [obj.path]
    assert s3_lake.read([obj.path])["id"].to_pylist() == [1, 2, 3]
    assert s3_lake.num_rows(obj.path) == 3
    new = s3_lake.replace(obj.path, table.slice(0, 1), {"a"})
    assert new.rows == 1 and new.sha256 != obj.sha256
    assert s3_lake.read([obj.path])["id"].to_pylist() == [1]
    assert [r["rows"] for r in s3_lake.outbox() if r.get("path") == obj.path] == [3, 1]
    s3_lake.delete(obj.path)
    assert s3_lake.files("raw") == []


def test_listing_by_day_and_org_on_s3(s3_lake: Lake) -> None:
    """One org's listing reads its own day folders (S3 common prefixes at '/')."""
    table = pa.table({"id": [1], "author_id": ["a"]})
    for day in (1, 2, 3):
        for org in ("acme", "globex"):
            s3_lake.write("processed", "tags", date(2026, 1, day), org, table)
    folders = list(s3_lake.storage.iter_folders("processed/tags/"))
    assert folders == [f"dt=2026-01-0{d}" for d in (1, 2, 3)]
    assert list(s3_lake.storage.iter_folders("processed/tags/dt=2026-01-02")) == [
        "org=acme", "org=globex"
    ]  # fmt: skip
    picked = s3_lake.files("processed", "tags", dt_from=date(2026, 1, 2), orgs=["acme"])
    assert sorted((p.dt.day, p.org) for p in picked) == [(2, "acme"), (3, "acme")]
    assert len(s3_lake.files("processed", "tags")) == 6


def test_conditional_put_refuses_to_overwrite(s3_lake: Lake) -> None:
    s3_lake.storage.put("x/once.bin", b"first", create_only=True)
    with pytest.raises(ObjectExistsError):
        s3_lake.storage.put("x/once.bin", b"second", create_only=True)
    assert s3_lake.storage.get("x/once.bin") == b"first"


def test_ingest_into_an_s3_lake_reconciles_and_is_idempotent(
    s3_lake: Lake, small_sample: tuple[Path, Manifest]
) -> None:
    sample, manifest = small_sample
    first = ingest_paths(s3_lake, [sample])
    assert first.records_in == sum(manifest.counts.values())
    assert first.quarantined_total == manifest.invalid_injected
    assert sum(s3_lake.num_rows(p.key) for p in s3_lake.files("raw")) == first.written_total
    second = ingest_paths(s3_lake, [sample])
    assert second.written_total == 0 and second.duplicates == second.records_in


def test_s3_uri_and_bad_bucket(s3_endpoint: str) -> None:
    storage = S3Storage("s3://socialsuggest/some/prefix", endpoint_url=s3_endpoint)
    assert storage.uri("raw/x.parquet") == "s3://socialsuggest/some/prefix/raw/x.parquet"
    with pytest.raises(ValueError, match="no bucket"):
        S3Storage("s3:///nobucket")


@pytest.mark.slow
def test_spark_preprocessing_and_fan_out_on_the_s3_lake(
    s3_endpoint: str,
    s3_credentials: dict[str, str],
    small_sample: tuple[Path, Manifest],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Spark reads raw partitions over s3a:// and writes processed ones through the lake;
    then the Spark training fan-out trains every org from them over s3a.

    Runs in a process of its own: the jars for s3a must be on the classpath when the JVM
    starts, so the suite's shared session cannot be reused. One process (one JVM with the
    s3a jars, ~50 s of CPU) runs `socialsuggest preprocess` through the CLI's own entry
    point, preprocesses again, and fans out: `socialsuggest train` would add an MLflow
    server and every org's registration, which test_tags_cycle.py covers.
    """
    import json

    for name, value in s3_credentials.items():
        monkeypatch.setenv(name, value)
    root = "s3://socialsuggest/spark-e2e"
    lake = Lake(S3Storage(root, endpoint_url=s3_endpoint))
    report = ingest_paths(lake, [small_sample[0]])
    env = {
        **os.environ,
        "SOCIALSUGGEST_LAKE_ROOT": root,
        "SOCIALSUGGEST_S3_ENDPOINT_URL": s3_endpoint,
        "SOCIALSUGGEST_SPARK_MASTER": "local[2]",
    }
    # The Spark fan-out stages each org's result in the lake and sweeps the folders of
    # runs killed more than a day ago: on S3 both go through s3a (the write, the listing
    # of prefixes, the recursive delete), and s3a reports every prefix as modified at 0.
    staging = "_staging/fanout"
    killed = run_folder(datetime.now(UTC) - timedelta(days=2))
    for name in (killed, "not-a-run"):
        lake.storage.put(f"{staging}/{name}/part-0.parquet", b"left behind")
    run = subprocess.run(
        [sys.executable, "-c", PREPROCESS_TWICE_THEN_FAN_OUT], env=env, capture_output=True,
        text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, _why(run.stderr)
    summary, done = (json.loads(line) for line in run.stdout.strip().splitlines()[-2:])
    assert summary["rows_written"] == report.written["messages"]
    processed = lake.files("processed", "tags")
    assert processed and sum(lake.num_rows(p.key) for p in processed) == report.written["messages"]
    assert done["nothing_to_do"]
    assert done["ok"] == {org: True for org in sorted({p.org for p in processed})}
    left = [o.key for o in lake.storage.iter_objects(staging)]
    assert left == [f"{staging}/not-a-run/part-0.parquet"], _why(run.stderr)
    # and no emptied folder listed either (SeaweedFS keeps one after a delete through
    # s3a unless it is deleted again: HadoopFolder.delete), or the next run's sweep would
    # report this run's folder as left by a run that did not finish
    assert list(lake.storage.iter_folders(f"{staging}/")) == ["not-a-run"]
    assert "fan-out: deleted " + killed in run.stderr


def _why(stderr: str) -> str:
    """What made the subprocess fail: its Python traceback or exit message, then the
    tail. Spark's shutdown hooks log after Python has exited (once a NullPointerException
    of their own), which pushed the real error out of a plain 3,000-character tail."""
    starts = [stderr.find(m) for m in ("Traceback (most recent call last)", "preprocess exited")]
    found = [s for s in starts if s >= 0]
    cause = stderr[min(found) :][:5000] if found else ""
    return f"{cause}\n[... last 2,000 characters of stderr:]\n{stderr[-2000:]}"


#: `socialsuggest preprocess` through the CLI's entry point, preprocess again (nothing new:
#: nothing to do), then train every org with the Spark fan-out, each result dropped as the
#: cycle's publishing takes it; prints two JSON lines: the command's summary, then those.
PREPROCESS_TWICE_THEN_FAN_OUT = """
import json
import sys
from datetime import UTC, datetime
from typer.testing import CliRunner
from socialsuggest.cli import app
from socialsuggest.config import load_settings
from socialsuggest.lake import Lake
from socialsuggest.models.tags import TagModelConfig
from socialsuggest.processing.spark import get_spark
from socialsuggest.processing.tags import preprocess_tags
from socialsuggest.training.fanout import processed_orgs, train_orgs_spark

first = CliRunner().invoke(app, ["preprocess"])  # the command, as `socialsuggest preprocess`
if first.exit_code != 0:
    sys.exit(f"preprocess exited {first.exit_code}: {first.output[-3000:]} {first.exception!r}")
settings = load_settings()
lake = Lake.from_settings(settings)
spark = get_spark(settings)  # the session the command started
again = preprocess_tags(spark, lake, settings=settings)
results = train_orgs_spark(
    spark, lake, processed_orgs(lake), TagModelConfig(), as_of=datetime.now(UTC),
    progress=lambda result: None,
)
print(json.dumps(json.loads(first.stdout)))
print(json.dumps({"nothing_to_do": again.nothing_to_do, "ok": {r.org: r.ok for r in results}}))
"""

"""The incremental bookkeeping every Spark preprocessing job shares.

A daily run should cost one day of data, not the whole history. So a job keeps a small
JSON state per raw partition ``(dt, org)``: the raw files it read (key -> size), the
processed files it wrote and whatever else the job needs to decide whether the
partition is current (the tag job adds its tags and their lifecycle). What the jobs
share lives here, so they cannot drift apart on it:

* :func:`raw_partitions` / :func:`processed_outputs` -- raw file sets and the processed
  files per partition, as the lake lists them now;
* :func:`gone_partitions` / :func:`remove_gone` -- partitions known to the state or the
  output whose raw data is gone (retention, deletion): their outputs are deleted too;
* :class:`StateFile` -- the state JSON (``{"version", "dataset", "output",
  "updated_at", "partitions": {"<dt>/<org>": {...}}}``), one file per job;
* :func:`partition_writer` -- the per-partition function Spark runs on executors;
* :func:`replace_outputs`, :func:`delete_all`, :func:`lake_path`.

Replacement is write-new-then-delete-old: a crash in between leaves both versions of a
partition (readers de-duplicate by id) and the next run, whose state was not updated
yet, recomputes the partition and removes every file it did not write.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from socialsuggest.lake import Lake, PartitionFile, open_storage

logger = logging.getLogger(__name__)

PartitionId = tuple[date, str]  # (dt, org)
RawFiles = dict[str, int]  # raw key -> size: a rewrite (a deletion request) changes it


def partition_key(pid: PartitionId) -> str:
    """How the state JSON names a partition: ``YYYY-MM-DD/<org>``."""
    return f"{pid[0].isoformat()}/{pid[1]}"


def parse_partition_key(text: str) -> PartitionId:
    day, org = text.split("/", 1)
    return date.fromisoformat(day), org


def by_partition(files: Iterable[PartitionFile]) -> dict[PartitionId, RawFiles]:
    """Listed raw files grouped per partition, with their sizes."""
    grouped: dict[PartitionId, RawFiles] = defaultdict(dict)
    for f in files:
        grouped[(f.dt, f.org)][f.key] = f.size
    return dict(grouped)


def raw_partitions(lake: Lake, dataset: str) -> dict[PartitionId, RawFiles]:
    """Every raw partition of ``dataset`` with its files, as the lake holds it now."""
    return by_partition(lake.files("raw", dataset))


def processed_outputs(lake: Lake, family: str) -> dict[PartitionId, set[str]]:
    """The processed files per partition, listed rather than taken from the state: a
    crashed run or a retried Spark task may have left files the state does not know."""
    found: dict[PartitionId, set[str]] = defaultdict(set)
    for f in lake.files("processed", family):
        found[(f.dt, f.org)].add(f.key)
    return found


def gone_partitions(
    raw: Mapping[PartitionId, Any],
    state: Mapping[PartitionId, Any],
    outputs: Mapping[PartitionId, Any],
) -> set[PartitionId]:
    """Partitions with a state or an output but no raw files any more: processed data
    must not outlive its source (retention, deletion requests)."""
    return (set(state) | set(outputs)) - set(raw)


def remove_gone(
    lake: Lake,
    gone: Iterable[PartitionId],
    outputs: Mapping[PartitionId, set[str]],
    state: dict[PartitionId, Any],
) -> int:
    """Delete the outputs of partitions whose raw data is gone and forget them; how many
    files were deleted."""
    deleted = 0
    for pid in gone:
        deleted += delete_all(lake, outputs.get(pid, set()))
        state.pop(pid, None)
    return deleted


@dataclass(frozen=True)
class StateFile:
    """One job's bookkeeping in the lake: which raw partitions made which outputs."""

    key: str  # e.g. ``_state/processing/tags.json``
    dataset: str  # the raw dataset read
    family: str  # the processed dataset written
    version: int = 1

    def load(self, lake: Lake) -> dict[PartitionId, dict[str, Any]]:
        """The records of earlier runs; none yet, or an unknown version, means start over."""
        if not lake.storage.exists(self.key):
            return {}
        doc = json.loads(lake.storage.get(self.key))
        if doc.get("version") != self.version:
            logger.warning("%s has version %s; recomputing all", self.key, doc.get("version"))
            return {}
        return {parse_partition_key(k): dict(v) for k, v in doc["partitions"].items()}

    def save(self, lake: Lake, partitions: Mapping[PartitionId, Mapping[str, Any]]) -> None:
        doc = {
            "version": self.version,
            "dataset": f"raw/{self.dataset}",
            "output": f"processed/{self.family}",
            "updated_at": datetime.now(UTC).isoformat(),
            "partitions": {partition_key(pid): dict(p) for pid, p in sorted(partitions.items())},
        }
        lake.storage.put(self.key, json.dumps(doc, indent=1, sort_keys=True).encode())


def delete_all(lake: Lake, keys: Iterable[str]) -> int:
    """Delete ``keys`` through the lake (catalog outbox included); how many."""
    count = 0
    for key in sorted(keys):
        lake.delete(key)
        count += 1
    return count


def replace_outputs(lake: Lake, old: Iterable[str], new: Iterable[str]) -> int:
    """After a partition's new output is written: delete every old file it replaces."""
    return delete_all(lake, set(old) - set(new))


def lake_path(lake: Lake, key: str) -> str:
    """Where Spark reads a lake key: the one place that maps keys to Spark paths.

    Locally that is the file path; an ``s3://`` root becomes ``s3a://`` (Spark's
    Hadoop connector, which needs the hadoop-aws jars configured on the session).
    """
    uri = str(lake.storage.uri(key))
    return "s3a://" + uri[len("s3://") :] if uri.startswith("s3://") else uri


def partition_writer(
    family: str,
    to_table: Callable[[pd.DataFrame], pa.Table],
    root: str,
    endpoint_url: str | None,
    retention_days: int,
    extra: Callable[[pd.DataFrame], dict[str, Any]] | None = None,
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The per-(dt, org) function Spark runs on executors (``applyInPandas``).

    It writes the partition's processed table through its own :class:`Lake` (an
    executor has none of the driver's objects), catalogued with its authors as subject
    ids so a deletion request finds the file, and returns one row: ``path``, ``org_id``,
    ``dt``, ``rows`` and the job's ``extra`` columns.
    """

    def write(group: pd.DataFrame) -> pd.DataFrame:
        lake = Lake(open_storage(root, endpoint_url), retention_days)
        table = to_table(group)
        dt, org = table.column("dt")[0].as_py(), table.column("org_id")[0].as_py()
        obj = lake.write(
            "processed",
            family,
            dt,
            org,
            table,
            subject_ids=set(table.column("author_id").to_pylist()),
        )
        row = {"path": obj.path, "org_id": org, "dt": dt, "rows": table.num_rows}
        row.update(extra(group) if extra is not None else {})
        return pd.DataFrame({name: [value] for name, value in row.items()})

    return write

"""Spark job: ``raw/posts`` → ``processed/hashtags`` (what the hashtag and trend models read).

Per raw (dt, org) partition one processed file: each post's content words and
hashtags as the hashtag model parses them (:func:`models.hashtags.parse_draft`, the
same function the serving app applies to a draft, so training and serving cannot
drift), plus its time and author. The author stays because the processed file is
personal data like its raw source: it is catalogued with its subject ids, so a
deletion request finds and rewrites it.

Incremental like the tag job: a partition is processed again only when its raw files
changed (a new file, a rewrite by a deletion request); outputs of partitions whose raw
data is gone are deleted. The bookkeeping lives in ``_state/processing/hashtags.json``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from socialsuggest.lake import Lake
from socialsuggest.models.hashtags.text import parse_draft
from socialsuggest.processing.incremental import (
    PartitionId,
    StateFile,
    gone_partitions,
    lake_path,
    partition_writer,
    processed_outputs,
    raw_partitions,
    remove_gone,
    replace_outputs,
)
from socialsuggest.processing.spark import session_of

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from socialsuggest.config import Settings

log = logging.getLogger(__name__)
RAW_DATASET = "posts"
FAMILY = "hashtags"
STATE_KEY = "_state/processing/hashtags.json"
STATE_VERSION = 1
STATE = StateFile(STATE_KEY, RAW_DATASET, FAMILY, STATE_VERSION)
PROCESSED_SCHEMA = pa.schema(
    [
        pa.field("post_id", pa.string(), nullable=False),
        pa.field("org_id", pa.string(), nullable=False),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("dt", pa.date32(), nullable=False),
        pa.field("author_id", pa.string(), nullable=False),
        pa.field("network", pa.string(), nullable=False),
        pa.field("words", pa.list_(pa.string()), nullable=False),
        pa.field("hashtags", pa.list_(pa.string()), nullable=False),
    ]
)
_RAW_COLUMNS = (
    "post_id string, org_id string, network string, author_id string, text string, "
    "hashtags array<string>, created_at timestamp"
)
_WRITTEN = "path string, org_id string, dt date, rows long"


@dataclass
class PostsReport:
    partitions_seen: int = 0
    partitions_processed: int = 0
    partitions_removed: int = 0
    rows_written: int = 0
    files_deleted: int = 0
    orgs: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return asdict(self)


def to_processed_table(frame: pd.DataFrame) -> pa.Table:
    """Raw post rows (one partition) → the processed table, oldest first."""
    ordered = frame.sort_values(["created_at", "post_id"], kind="stable")
    drafts = [
        parse_draft(str(text), list(tags) if tags is not None else [])
        for text, tags in zip(ordered["text"], ordered["hashtags"], strict=True)
    ]
    created = pd.to_datetime(ordered["created_at"], utc=True)
    columns = {
        "post_id": ordered["post_id"].astype(str).tolist(),
        "org_id": ordered["org_id"].astype(str).tolist(),
        "created_at": created,
        "dt": [pd.Timestamp(d).date() for d in ordered["dt"]],
        "author_id": ordered["author_id"].astype(str).tolist(),
        "network": ordered["network"].astype(str).tolist(),
        "words": [list(d.words) for d in drafts],
        "hashtags": [list(d.hashtags) for d in drafts],
    }
    return pa.Table.from_pydict(
        {n: pa.array(v, PROCESSED_SCHEMA.field(n).type) for n, v in columns.items()},
        schema=PROCESSED_SCHEMA,
    )


def preprocess_posts(
    spark: SparkSession | Callable[[], SparkSession],
    lake: Lake,
    *,
    settings: Settings,
    full: bool = False,
    progress: Callable[[str], None] | None = None,
) -> PostsReport:
    """Bring ``processed/hashtags`` up to date with ``raw/posts``.

    ``spark`` may be a factory: it is called only when a partition needs processing, so
    a run with nothing new (the hourly trends job, mostly) starts no JVM.
    """
    from pyspark.sql import functions as F

    say = progress or (lambda m: log.info("preprocess posts: %s", m))
    started = time.perf_counter()
    report = PostsReport()
    raw = raw_partitions(lake, RAW_DATASET)
    state = {} if full else STATE.load(lake)
    outputs = processed_outputs(lake, FAMILY)
    todo = {pid: files for pid, files in raw.items() if state.get(pid, {}).get("raw") != files}
    gone = gone_partitions(raw, state, outputs)
    report.partitions_seen = len(raw)
    say(f"{len(raw)} raw partitions, {len(todo)} to process, {len(gone)} to remove")
    written: dict[PartitionId, tuple[str, int]] = {}
    if todo:
        session = session_of(spark)
        paths = [lake_path(lake, key) for files in todo.values() for key in sorted(files)]
        frame = (
            session.read.schema(_RAW_COLUMNS)
            .parquet(*paths)
            .withColumn(
                "dt",  # the raw partition's day, so output follows its source partition
                F.to_date(
                    F.regexp_extract(F.col("_metadata.file_path"), r"/dt=(\d{4}-\d{2}-\d{2})/", 1)
                ),
            )
        )
        writer = partition_writer(
            FAMILY,
            to_processed_table,
            lake.root,
            settings.s3_endpoint_url or None,
            lake.retention_days,
        )
        for row in frame.groupBy("dt", "org_id").applyInPandas(writer, _WRITTEN).collect():
            written[(row["dt"], row["org_id"])] = (row["path"], int(row["rows"]))
    now = datetime.now(UTC).isoformat()
    for pid, files in todo.items():
        path, rows = written.get(pid, ("", 0))
        new_outputs = [path] if path else []
        report.files_deleted += replace_outputs(lake, outputs.get(pid, set()), new_outputs)
        state[pid] = {"raw": files, "outputs": new_outputs, "rows": rows, "processed_at": now}
        report.rows_written += rows
    report.files_deleted += remove_gone(lake, gone, outputs, state)
    STATE.save(lake, state)
    report.partitions_processed, report.partitions_removed = len(todo), len(gone)
    report.orgs = sorted({org for _, org in todo} | {org for _, org in gone})
    report.seconds = round(time.perf_counter() - started, 2)
    say(
        f"processed {len(todo)} partitions ({report.rows_written} posts), removed {len(gone)}, "
        f"{report.seconds:.1f}s"
    )
    return report


def load_posts(lake: Lake, org: str) -> pd.DataFrame:
    """One org's processed posts, oldest first (``words``/``hashtags`` as lists)."""
    files = lake.files("processed", FAMILY, orgs=[org])
    if not files:
        return PROCESSED_SCHEMA.empty_table().to_pandas()
    table = lake.read(sorted(f.key for f in files)).cast(PROCESSED_SCHEMA)
    frame = table.drop_columns(["words", "hashtags"]).to_pandas()
    for column in ("words", "hashtags"):
        frame[column] = pd.Series(table.column(column).to_pylist(), index=frame.index, dtype=object)
    frame = frame.drop_duplicates("post_id", keep="last")
    return frame.sort_values(["created_at", "post_id"], kind="stable").reset_index(drop=True)

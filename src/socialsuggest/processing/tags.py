"""Incremental Spark preprocessing of raw messages into per-(dt, org) tag examples.

Why incremental, and how: a daily run should cost one day of data, not the whole
history. The job keeps a small JSON state (``_state/processing/tags.json``) recording,
per raw partition ``(dt, org)``, the raw files it read (key -> size), the distinct raw
tags seen there, a fingerprint of the tag lifecycle *as it applies to those tags on
that day* and the processed files it wrote. A partition is recomputed when

* it is new, or its raw file set changed (a new part file from a late ingest, or a
  file rewritten by a GDPR deletion: the size changes),
* or the lifecycle of one of its tags changed within that day (e.g. a tag archived at
  T: partitions of days >= T that carry the tag), see :meth:`TagLifecycle.day_fingerprint`.

Trade-offs, stated: sizes, not checksums, detect a rewrite (a same-size rewrite would be
missed; the lake's catalog sha256 could replace sizes at the cost of reading the
outbox); a lifecycle event that touches a tag a day never carried costs nothing, but
the tag set is taken from the last processing of the partition, so it is only as
fresh as the raw files, which is exactly when it is needed. A partition whose raw
files all vanished (retention, deletion) has its processed files deleted too.

Replacement is write-new-then-delete-old: a crash in between leaves both versions of
one partition (readers de-duplicate by message id) and the next run, whose state was
not yet updated, recomputes the partition and removes every file it did not write.
Two concurrent runs on one lake are not supported (the DAG serialises them).

Every run needs the whole tag lifecycle, every org's; its rows are cached in
``_state/processing/tag_events.parquet`` by source file key and size, so a run reads
only the event files ingested or rewritten since the last (see
:func:`~socialsuggest.processing.lifecycle.read_all_tag_events`).

The bookkeeping the posts job shares (raw file sets, outputs, gone partitions, the
state file, the executor-side writer) is :mod:`processing.incremental`; what is this
job's own is the tag set and lifecycle fingerprint per partition, and orphan outputs.
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

from socialsuggest.config import Settings, load_settings
from socialsuggest.lake import Lake
from socialsuggest.processing.incremental import (
    PartitionId,
    StateFile,
    delete_all,
    gone_partitions,
    lake_path,
    partition_writer,
    processed_outputs,
    raw_partitions,
    remove_gone,
    replace_outputs,
)
from socialsuggest.processing.lifecycle import TagLifecycle, read_all_tag_events
from socialsuggest.processing.spark import session_of
from socialsuggest.processing.text import clean_series

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

logger = logging.getLogger(__name__)

STATE_KEY = "_state/processing/tags.json"
STATE_VERSION = 1
RAW_DATASET = "messages"
FAMILY = "tags"
STATE = StateFile(STATE_KEY, RAW_DATASET, FAMILY, STATE_VERSION)

PROCESSED_SCHEMA = pa.schema(
    [
        pa.field("message_id", pa.string(), nullable=False),
        pa.field("org_id", pa.string(), nullable=False),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("dt", pa.date32(), nullable=False),
        pa.field("author_id", pa.string(), nullable=False),
        pa.field("network", pa.string(), nullable=False),
        pa.field("message_type", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("text_raw_len", pa.int32(), nullable=False),
        pa.field("tags", pa.list_(pa.string()), nullable=False),
    ]
)
_WRITTEN_SCHEMA = (
    "path string, org_id string, dt date, rows long, dropped long, raw_tags array<string>"
)
_RAW_COLUMNS = (
    "message_id string, org_id string, network string, message_type string, "
    "author_id string, text string, created_at timestamp, "
    "tags array<struct<tag: string, applied_by: string, applied_at: timestamp>>"
)
Progress = Callable[[str], None]


# ---- report and state ------------------------------------------------------------------
@dataclass
class PreprocessReport:
    """What one run did; ``nothing_to_do`` means no Spark job ran and nothing was written."""

    partitions_seen: int = 0
    partitions_processed: int = 0
    partitions_skipped: int = 0
    partitions_removed: int = 0
    rows_written: int = 0
    files_written: int = 0
    files_deleted: int = 0
    dropped_archived: int = 0
    orgs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    nothing_to_do: bool = False

    def summary(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PartitionState:
    raw: dict[str, int]
    tags: list[str]
    lifecycle: str
    outputs: list[str]
    rows: int
    processed_at: str


def load_state(lake: Lake) -> dict[PartitionId, PartitionState]:
    """The bookkeeping of earlier runs; an unknown version means start over."""
    return {pid: PartitionState(**v) for pid, v in STATE.load(lake).items()}


def save_state(lake: Lake, state: dict[PartitionId, PartitionState]) -> None:
    STATE.save(lake, {pid: asdict(s) for pid, s in state.items()})


# ---- planning (driver, no Spark) -------------------------------------------------------
def _is_current(
    pid: PartitionId, raw: dict[str, int], old: PartitionState | None, lifecycle: TagLifecycle
) -> bool:
    if old is None or old.raw != raw:
        return False
    return bool(old.lifecycle == lifecycle.day_fingerprint(pid[1], pid[0], old.tags))


# ---- the Spark job ---------------------------------------------------------------------
def _tag_filter_frame(spark: SparkSession, lifecycle: TagLifecycle, orgs: set[str]) -> DataFrame:
    from pyspark.sql import types as T

    schema = T.StructType(
        [
            T.StructField("org_id", T.StringType(), False),
            T.StructField("tag", T.StringType(), False),
            T.StructField(
                "spans",
                T.ArrayType(
                    T.StructType(
                        [
                            T.StructField("start", T.TimestampType(), True),
                            T.StructField("end", T.TimestampType(), True),
                        ]
                    )
                ),
                False,
            ),
        ]
    )
    return spark.createDataFrame(lifecycle.rows(orgs), schema)


def _examples(spark: SparkSession, paths: list[str], lifecycle_df: DataFrame) -> DataFrame:
    """Raw messages -> one row per message with lifecycle-filtered, cleaned fields."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.functions import pandas_udf

    # An explicit schema spares Spark reading every file footer to infer one.
    raw = (
        spark.read.schema(_RAW_COLUMNS)
        .parquet(*paths)
        .select(
            "message_id",
            "org_id",
            "created_at",
            "author_id",
            "network",
            "message_type",
            F.col("text").alias("text_raw"),
            "tags",
            # dt from the file's partition, not from created_at: output must follow the
            # raw partition so a rewritten raw partition replaces exactly its own output.
            F.to_date(
                F.regexp_extract(F.col("_metadata.file_path"), r"/dt=(\d{4}-\d{2}-\d{2})/", 1)
            ).alias("dt"),
        )
    )
    message_cols = [c for c in raw.columns if c != "tags"]
    applications = raw.select(*message_cols, F.explode_outer("tags.tag").alias("tag")).join(
        F.broadcast(lifecycle_df), on=["org_id", "tag"], how="left"
    )
    in_span = F.exists(
        "spans",
        lambda s: (
            (s["start"].isNull() | (F.col("created_at") >= s["start"]))
            & (s["end"].isNull() | (F.col("created_at") < s["end"]))
        ),
    )
    kept = F.col("tag").isNotNull() & (F.col("spans").isNull() | in_span)
    per_message = applications.groupBy(*message_cols).agg(
        F.array_sort(F.array_distinct(F.collect_list(F.when(kept, F.col("tag"))))).alias("tags"),
        F.collect_set("tag").alias("raw_tags"),
        F.sum(F.when(F.col("tag").isNotNull() & ~kept, 1).otherwise(0)).alias("dropped"),
    )
    clean = pandas_udf(_clean_batch, "string")  # type: ignore[call-overload]
    return per_message.select(
        "message_id",
        "org_id",
        "created_at",
        "dt",
        "author_id",
        "network",
        "message_type",
        clean(F.col("text_raw")).alias("text"),
        F.length("text_raw").cast("int").alias("text_raw_len"),
        "tags",
        "raw_tags",
        F.col("dropped").cast("long").alias("dropped"),
    )


def _clean_batch(texts: pd.Series) -> pd.Series:
    """The pandas UDF body: exactly the serving app's ``clean_text``, per Arrow batch."""
    return clean_series(texts)


def _to_processed_table(frame: pd.DataFrame) -> pa.Table:
    ordered = frame.sort_values(["created_at", "message_id"], kind="stable")
    created = pd.to_datetime(ordered["created_at"])
    if created.dt.tz is None:
        created = created.dt.tz_localize("UTC")
    columns = {
        "message_id": ordered["message_id"].astype(str).tolist(),
        "org_id": ordered["org_id"].astype(str).tolist(),
        "created_at": created.dt.tz_convert("UTC"),
        "dt": [pd.Timestamp(d).date() for d in ordered["dt"]],
        "author_id": ordered["author_id"].astype(str).tolist(),
        "network": ordered["network"].astype(str).tolist(),
        "message_type": ordered["message_type"].astype(str).tolist(),
        "text": ordered["text"].astype(str).tolist(),
        "text_raw_len": ordered["text_raw_len"].astype("int32"),
        "tags": [[str(t) for t in tags] for tags in ordered["tags"]],
    }
    return pa.Table.from_pydict(
        {
            name: pa.array(values, PROCESSED_SCHEMA.field(name).type)
            for name, values in columns.items()
        },
        schema=PROCESSED_SCHEMA,
    )


def _tag_columns(group: pd.DataFrame) -> dict[str, Any]:
    """Beside the written file, what the state and report need: the tag applications the
    lifecycle dropped and every raw tag the partition carries (its lifecycle fingerprint)."""
    return {
        "dropped": int(group["dropped"].sum()),
        "raw_tags": sorted({str(t) for tags in group["raw_tags"] for t in tags}),
    }


@dataclass(frozen=True)
class _Written:
    path: str
    rows: int
    dropped: int
    raw_tags: list[str]


def _run_spark(
    spark: SparkSession,
    lake: Lake,
    settings: Settings,
    raw: dict[PartitionId, dict[str, int]],
    lifecycle: TagLifecycle,
) -> dict[PartitionId, _Written]:
    paths = [lake_path(lake, key) for files in raw.values() for key in sorted(files)]
    orgs = {org for _, org in raw}
    examples = _examples(spark, paths, _tag_filter_frame(spark, lifecycle, orgs))
    writer = partition_writer(
        FAMILY,
        _to_processed_table,
        lake.root,
        settings.s3_endpoint_url or None,
        lake.retention_days,
        extra=_tag_columns,
    )
    rows = examples.groupBy("dt", "org_id").applyInPandas(writer, _WRITTEN_SCHEMA).collect()
    return {
        (r["dt"], r["org_id"]): _Written(r["path"], r["rows"], r["dropped"], list(r["raw_tags"]))
        for r in rows
    }


# ---- the entry point -------------------------------------------------------------------
class _Steps:
    """Per-step progress lines (counts only: no ids, no text)."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress

    def __call__(self, message: str) -> None:
        logger.info("preprocess tags: %s", message)
        if self.progress is not None:
            self.progress(message)


def preprocess_tags(
    spark: SparkSession | Callable[[], SparkSession],
    lake: Lake,
    *,
    settings: Settings | None = None,
    full: bool = False,
    progress: Progress | None = None,
) -> PreprocessReport:
    """Bring ``processed/tags`` up to date with ``raw/messages`` and the tag lifecycle.

    ``full`` ignores the state and recomputes every partition (after a change of the
    cleaning code, for instance: the state does not know code versions), and reads
    every tag-event file again instead of the cached rows.

    ``spark`` may be a factory, as for :func:`~socialsuggest.processing.posts.preprocess_posts`:
    it is called only when a partition needs processing, so a run with nothing new (a
    DAG run cleared and run again, a second ``preprocess`` the same day) starts no JVM.
    """
    started = time.perf_counter()
    settings = settings or load_settings(lake_root=lake.root)
    step = _Steps(progress)
    report = PreprocessReport()

    raw = raw_partitions(lake, RAW_DATASET)
    events = read_all_tag_events(lake, refresh=full)
    lifecycle = TagLifecycle.from_table(events.table)
    step(f"tag lifecycle: {events.files} event files, {events.files_read} read (new or changed)")
    state = {} if full else load_state(lake)
    outputs = processed_outputs(lake, FAMILY)
    report.partitions_seen = len(raw)
    todo = {pid: f for pid, f in raw.items() if not _is_current(pid, f, state.get(pid), lifecycle)}
    gone = gone_partitions(raw, state, outputs)
    orphans = {
        pid: outputs.get(pid, set()) - set(state[pid].outputs)
        for pid in raw
        if pid not in todo and pid in state
    }
    orphans = {pid: keys for pid, keys in orphans.items() if keys}
    report.partitions_skipped = len(raw) - len(todo)
    step(f"{len(raw)} raw partitions, {len(todo)} to process, {len(gone)} to remove")

    if not todo and not gone and not orphans:
        report.nothing_to_do = True
        report.seconds = time.perf_counter() - started
        step("nothing to do")
        return report

    written = _run_spark(session_of(spark), lake, settings, todo, lifecycle) if todo else {}
    if written:
        # listed again: a retried Spark task may have left a file next to its retry's
        outputs = processed_outputs(lake, FAMILY)
    now = datetime.now(UTC).isoformat()
    for pid, files in todo.items():
        result = written.get(pid)
        new_outputs = [result.path] if result else []
        report.files_deleted += replace_outputs(lake, outputs.get(pid, set()), new_outputs)
        tags = result.raw_tags if result else []
        state[pid] = PartitionState(
            raw=files,
            tags=tags,
            lifecycle=lifecycle.day_fingerprint(pid[1], pid[0], tags),
            outputs=new_outputs,
            rows=result.rows if result else 0,
            processed_at=now,
        )
        report.rows_written += result.rows if result else 0
        report.dropped_archived += result.dropped if result else 0
    report.files_written = len(written)
    report.files_deleted += remove_gone(lake, gone, outputs, state)
    for keys in orphans.values():
        report.files_deleted += delete_all(lake, keys)
    save_state(lake, state)

    report.partitions_processed = len(todo)
    report.partitions_removed = len(gone)
    report.orgs = sorted({org for _, org in todo} | {org for _, org in gone})
    report.seconds = time.perf_counter() - started
    step(
        f"processed {report.partitions_processed} partitions ({report.rows_written} rows, "
        f"{report.dropped_archived} inactive tag applications dropped), "
        f"removed {report.partitions_removed}, {report.seconds:.1f}s"
    )
    return report

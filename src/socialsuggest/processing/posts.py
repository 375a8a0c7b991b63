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

import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from socialsuggest.lake import Lake, open_storage
from socialsuggest.models.hashtags.text import parse_draft
from socialsuggest.processing.tags import _by_partition, _delete_all, lake_path

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from socialsuggest.config import Settings

log = logging.getLogger(__name__)
RAW_DATASET = "posts"
FAMILY = "hashtags"
STATE_KEY = "_state/processing/hashtags.json"
STATE_VERSION = 1
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
PartitionId = tuple[date, str]


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


def _writer(
    root: str, endpoint_url: str | None, retention_days: int
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Per (dt, org), on an executor: parse and write through the executor's own Lake."""

    def write(group: pd.DataFrame) -> pd.DataFrame:
        lake = Lake(open_storage(root, endpoint_url), retention_days)
        table = to_processed_table(group)
        dt, org = table.column("dt")[0].as_py(), table.column("org_id")[0].as_py()
        obj = lake.write(
            "processed",
            FAMILY,
            dt,
            org,
            table,
            subject_ids=set(table.column("author_id").to_pylist()),
        )
        return pd.DataFrame(
            {"path": [obj.path], "org_id": [org], "dt": [dt], "rows": [table.num_rows]}
        )

    return write


def _load_state(lake: Lake) -> dict[str, dict[str, Any]]:
    if not lake.storage.exists(STATE_KEY):
        return {}
    doc = json.loads(lake.storage.get(STATE_KEY))
    return dict(doc["partitions"]) if doc.get("version") == STATE_VERSION else {}


def _key(pid: PartitionId) -> str:
    return f"{pid[0].isoformat()}/{pid[1]}"


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
    raw = _by_partition(lake.files("raw", RAW_DATASET))
    state = {} if full else _load_state(lake)
    outputs: dict[str, set[str]] = defaultdict(set)
    for f in lake.files("processed", FAMILY):
        outputs[_key((f.dt, f.org))].add(f.key)
    todo = {
        pid: files for pid, files in raw.items() if state.get(_key(pid), {}).get("raw") != files
    }
    gone = (set(state) | set(outputs)) - {_key(pid) for pid in raw}
    report.partitions_seen = len(raw)
    say(f"{len(raw)} raw partitions, {len(todo)} to process, {len(gone)} to remove")
    written: dict[str, tuple[str, int]] = {}
    if todo:
        session = spark() if callable(spark) else spark
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
        writer = _writer(lake.root, settings.s3_endpoint_url or None, lake.retention_days)
        for row in frame.groupBy("dt", "org_id").applyInPandas(writer, _WRITTEN).collect():
            written[_key((row["dt"], row["org_id"]))] = (row["path"], int(row["rows"]))
    now = datetime.now(UTC).isoformat()
    for pid, files in todo.items():
        key = _key(pid)
        path, rows = written.get(key, ("", 0))
        report.files_deleted += _delete_all(lake, outputs.get(key, set()) - {path})
        state[key] = {
            "raw": files,
            "outputs": [path] if path else [],
            "rows": rows,
            "processed_at": now,
        }
        report.rows_written += rows
    for key in gone:
        report.files_deleted += _delete_all(lake, outputs.get(key, set()))
        state.pop(key, None)
    doc = {
        "version": STATE_VERSION,
        "dataset": f"raw/{RAW_DATASET}",
        "output": f"processed/{FAMILY}",
        "updated_at": now,
        "partitions": dict(sorted(state.items())),
    }
    lake.storage.put(STATE_KEY, json.dumps(doc, indent=1, sort_keys=True).encode())
    report.partitions_processed, report.partitions_removed = len(todo), len(gone)
    report.orgs = sorted({org for _, org in todo} | {k.split("/", 1)[1] for k in gone})
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

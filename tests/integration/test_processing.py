"""Spark preprocessing of the tag family on real generated data, incremental runs.

One module-scoped lake is ingested and processed once; tests that change data work
on a copy of it, so each pays only for the incremental run it is about.
"""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from socialsuggest.config import Settings, load_settings
from socialsuggest.ingest import ingest_events, ingest_paths
from socialsuggest.lake import OUTBOX_PREFIX, Lake
from socialsuggest.processing import (
    PROCESSED_SCHEMA,
    STATE_KEY,
    PreprocessReport,
    archived_tags,
    clean_text,
    load_examples,
    load_state,
    load_tag_lifecycle,
    preprocess_tags,
    time_split,
)
from socialsuggest.sampledata import Manifest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(
    tmp_path_factory: pytest.TempPathFactory,
    small_sample: tuple[Path, Manifest],
    spark: SparkSession,
) -> tuple[Path, PreprocessReport]:
    """The small sample ingested and preprocessed once; tests copy it before changing it."""
    home = tmp_path_factory.mktemp("processing") / "var"
    lake = _lake(home)
    ingest_paths(lake, [small_sample[0]])
    report = preprocess_tags(spark, lake, settings=_settings(home))
    return home, report


def _settings(home: Path) -> Settings:
    return load_settings(home=home, lake_root=str(home / "lake"), spark_master="local[2]")


def _lake(home: Path) -> Lake:
    return Lake.from_settings(_settings(home))


@pytest.fixture
def copy(base: tuple[Path, PreprocessReport], tmp_path: Path) -> tuple[Lake, Settings]:
    home = tmp_path / "var"
    shutil.copytree(base[0], home)
    return _lake(home), _settings(home)


def _raw(lake: Lake) -> pa.Table:
    return lake.read([f.key for f in lake.files("raw", "messages")])


def _processed(lake: Lake) -> pa.Table:
    return lake.read([f.key for f in lake.files("processed", "tags")])


def _file_set(lake: Lake, zone: str = "processed") -> dict[str, int]:
    return {f.key: f.size for f in lake.files(zone)}


def _outbox_len(lake: Lake) -> int:
    return sum(1 for _ in lake.storage.iter_objects(OUTBOX_PREFIX + "/"))


def _by_id(table: pa.Table) -> dict[str, dict[str, Any]]:
    return {row["message_id"]: row for row in table.to_pylist()}


# ---- first run ------------------------------------------------------------------------
def test_first_run_writes_every_valid_message_once(base: tuple[Path, PreprocessReport]) -> None:
    home, report = base
    lake = _lake(home)
    raw, processed = _raw(lake), _processed(lake)
    raw_partitions = {(f.dt, f.org) for f in lake.files("raw", "messages")}
    assert report.rows_written == raw.num_rows == processed.num_rows > 2500
    assert sorted(processed.column("message_id").to_pylist()) == sorted(
        raw.column("message_id").to_pylist()
    )
    assert report.partitions_seen == report.partitions_processed == len(raw_partitions) == 40
    assert report.partitions_skipped == 0 and not report.nothing_to_do
    assert report.orgs == sorted({org for _, org in raw_partitions})
    processed_files = lake.files("processed", "tags")
    assert {(f.dt, f.org) for f in processed_files} == raw_partitions
    assert len(processed_files) == len(raw_partitions)  # one file per partition


def test_output_schema_order_and_catalogued_subjects(base: tuple[Path, PreprocessReport]) -> None:
    lake = _lake(base[0])
    records = {r["path"]: r for r in lake.outbox() if r.get("zone") == "processed"}
    for part in lake.files("processed", "tags"):
        table = lake.read_file(part.key)
        assert table.schema.equals(PROCESSED_SCHEMA)
        assert table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
        assert set(table.column("dt").to_pylist()) == {part.dt}
        assert set(table.column("org_id").to_pylist()) == {part.org}
        order = [(r["created_at"], r["message_id"]) for r in table.to_pylist()]
        assert order == sorted(order)
        # processed data is personal data: the catalog must find it by author id
        assert records[part.key]["subject_ids"] == sorted(
            set(table.column("author_id").to_pylist())
        )
        assert records[part.key]["rows"] == table.num_rows


def _lifecycle_events(lake: Lake) -> dict[tuple[str, str], dict[str, list[datetime]]]:
    events = lake.read([f.key for f in lake.files("raw", "tag_events")]).to_pylist()
    found: dict[tuple[str, str], dict[str, list[datetime]]] = defaultdict(
        lambda: {"created": [], "archived": []}
    )
    for e in events:
        found[(e["org_id"], e["tag"])][e["action"]].append(e["at"])
    return found


def test_every_processed_tag_is_active_when_the_message_was_created(
    base: tuple[Path, PreprocessReport],
) -> None:
    lake = _lake(base[0])
    lifecycle = _lifecycle_events(lake)
    raw = _by_id(_raw(lake))
    new_tags_seen = archived_tags_seen = 0
    period_start = min(r["created_at"] for r in raw.values())
    for row in _processed(lake).to_pylist():
        assert row["tags"] == sorted(set(row["tags"]))
        for tag in row["tags"]:
            events = lifecycle[(row["org_id"], tag)]
            assert all(c <= row["created_at"] for c in events["created"]), tag
            assert all(row["created_at"] < a for a in events["archived"]), tag
            new_tags_seen += any(c > period_start for c in events["created"])
            archived_tags_seen += bool(events["archived"])
        # the generator applies only active tags, so nothing legitimate was dropped
        assert row["tags"] == sorted({t["tag"] for t in raw[row["message_id"]]["tags"]})
    assert new_tags_seen > 0 and archived_tags_seen > 0  # the check above had teeth
    assert base[1].dropped_archived == 0


def test_text_is_cleaned_with_the_serving_function(base: tuple[Path, PreprocessReport]) -> None:
    lake = _lake(base[0])
    raw = _by_id(_raw(lake))
    rows = _processed(lake).to_pylist()
    assert any("http" in r["text"] for r in raw.values())
    assert any(re.search(r"@\w", r["text"]) for r in raw.values())
    for row in rows:
        source = raw[row["message_id"]]["text"]
        assert row["text"] == clean_text(source)
        assert row["text_raw_len"] == len(source)
        assert "http" not in row["text"]
        assert re.search(r"@(?!user\b)\w", row["text"]) is None
        assert row["text"] == row["text"].lower()


# ---- incremental runs -----------------------------------------------------------------
def test_second_run_has_nothing_to_do_and_writes_nothing(
    copy: tuple[Lake, Settings], spark: SparkSession
) -> None:
    lake, settings = copy
    files, outbox, state = _file_set(lake), _outbox_len(lake), lake.storage.get(STATE_KEY)
    report = preprocess_tags(spark, lake, settings=settings)
    assert report.nothing_to_do
    assert report.partitions_processed == 0 and report.partitions_skipped == 40
    assert report.rows_written == report.files_written == report.files_deleted == 0
    assert _file_set(lake) == files
    assert _outbox_len(lake) == outbox
    assert lake.storage.get(STATE_KEY) == state


def _shifted_messages(lake: Lake, orgs: list[str], day: date, n: int) -> list[dict[str, Any]]:
    """Real messages of ``orgs`` re-issued on a new day (new ids), as a producer would send."""
    all_rows = _raw(lake).to_pylist()
    rows = [row for org in orgs for row in [r for r in all_rows if r["org_id"] == org][:n]]
    records = []
    for i, row in enumerate(rows):
        at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=7 * i)
        records.append(
            {
                "event_type": "message",
                "schema_version": 1,
                "message_id": f"new-{i}",
                "org_id": row["org_id"],
                "network": row["network"],
                "message_type": row["message_type"],
                "author_id": row["author_id"],
                "text": row["text"],
                "created_at": at.isoformat(),
                "tags": [
                    {"tag": t["tag"], "applied_by": t["applied_by"], "applied_at": at.isoformat()}
                    for t in row["tags"]
                ],
            }
        )
    return records


def test_a_new_day_processes_only_its_partitions(
    copy: tuple[Lake, Settings], spark: SparkSession
) -> None:
    lake, settings = copy
    before = _file_set(lake)
    new_day = date(2026, 11, 1)
    orgs = sorted({f.org for f in lake.files("raw", "messages")})[:2]
    records = _shifted_messages(lake, orgs, new_day, 15)
    assert ingest_events(lake, records).written_total == len(records)

    report = preprocess_tags(spark, lake, settings=settings)
    assert not report.nothing_to_do
    assert report.partitions_processed == 2 and report.partitions_skipped == 40
    assert report.rows_written == len(records) and report.orgs == orgs
    after = _file_set(lake)
    assert {k: v for k, v in after.items() if k in before} == before  # old files untouched
    added = [lake._parse_key(k) for k in set(after) - set(before)]
    assert sorted((p.dt, p.org) for p in added) == [(new_day, org) for org in orgs]
    state = load_state(lake)
    assert {(new_day, org) for org in orgs} <= set(state) and len(state) == 42
    # with nothing new, the session factory is never called: no JVM for an idle day
    assert preprocess_tags(_no_spark, lake, settings=settings).nothing_to_do


def _no_spark() -> Any:
    raise AssertionError("a run with nothing to process started Spark")


def test_a_rewritten_raw_partition_is_recomputed(
    copy: tuple[Lake, Settings], spark: SparkSession
) -> None:
    lake, settings = copy
    target = max(lake.files("raw", "messages"), key=lambda f: f.size)
    table = lake.read_file(target.key)
    kept = table.slice(0, table.num_rows // 2)  # as a deletion request would rewrite it
    lake.replace(target.key, kept, subject_ids=set(kept.column("author_id").to_pylist()))
    old = lake.files("processed", "tags", dt_from=target.dt, dt_to=target.dt, orgs=[target.org])
    others = {k: v for k, v in _file_set(lake).items() if k not in {o.key for o in old}}

    report = preprocess_tags(spark, lake, settings=settings)
    assert report.partitions_processed == 1 and report.partitions_skipped == 39
    assert report.rows_written == kept.num_rows and report.files_deleted == 1
    new = lake.files("processed", "tags", dt_from=target.dt, dt_to=target.dt, orgs=[target.org])
    assert len(new) == 1 and new[0].key != old[0].key
    processed = lake.read_file(new[0].key)
    assert sorted(processed.column("message_id").to_pylist()) == sorted(
        kept.column("message_id").to_pylist()
    )
    assert {k: v for k, v in _file_set(lake).items() if k != new[0].key} == others
    assert any(r.get("op") == "delete" and r["path"] == old[0].key for r in lake.outbox())


def _busy_tag(lake: Lake) -> tuple[str, str, list[datetime]]:
    """The (org, tag) applied on most days, with its application times."""
    uses: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for row in _raw(lake).to_pylist():
        for t in {t["tag"] for t in row["tags"]}:
            uses[(row["org_id"], t)].append(row["created_at"])
    (org, tag), times = max(uses.items(), key=lambda kv: (len({t.date() for t in kv[1]}), kv[0]))
    return org, tag, sorted(times)


def _lifecycle_event(org: str, tag: str, action: str, at: datetime) -> dict[str, Any]:
    return {
        "event_type": "tag_lifecycle",
        "schema_version": 1,
        "org_id": org,
        "tag": tag,
        "action": action,
        "at": at.isoformat(),
        "actor_id": "ag-test",
    }


def test_archiving_a_tag_recomputes_only_affected_partitions(
    copy: tuple[Lake, Settings], spark: SparkSession
) -> None:
    lake, settings = copy
    org, tag, times = _busy_tag(lake)
    archived_at = times[len(times) // 2] + timedelta(seconds=1)
    affected = {(t.date(), org) for t in times if t.date() >= archived_at.date()}
    ingest_events(lake, [_lifecycle_event(org, tag, "archived", archived_at)])
    state_before = load_state(lake)

    report = preprocess_tags(spark, lake, settings=settings)
    assert report.partitions_processed == len(affected) and report.orgs == [org]
    state = load_state(lake)
    recomputed = {
        pid for pid, s in state.items() if s.processed_at != state_before[pid].processed_at
    }
    assert recomputed == affected
    after = [t for t in times if t >= archived_at]
    assert report.dropped_archived == len(after) > 0
    examples = load_examples(lake, org)
    with_tag = examples[examples["tags"].map(lambda tags: tag in tags)]
    assert len(with_tag) == len(times) - len(after)
    assert (with_tag["created_at"] < archived_at).all()

    lifecycle = load_tag_lifecycle(lake, org)
    row = lifecycle[lifecycle["tag"] == tag].iloc[0]
    assert row["archived_at"] == archived_at
    assert tag in archived_tags(lifecycle, org, archived_at)
    assert tag not in archived_tags(lifecycle, org, archived_at - timedelta(seconds=1))

    # re-created later: active again from then on, the archived gap stays without it
    recreated_at = times[-1] - timedelta(hours=12)
    ingest_events(lake, [_lifecycle_event(org, tag, "created", recreated_at)])
    preprocess_tags(spark, lake, settings=settings)
    examples = load_examples(lake, org)
    has_tag = examples["tags"].map(lambda tags: tag in tags)
    gap = (examples["created_at"] >= archived_at) & (examples["created_at"] < recreated_at)
    expected = len(times) - sum(1 for t in times if archived_at <= t < recreated_at)
    assert int(has_tag.sum()) == expected and not (has_tag & gap).any()
    assert tag not in archived_tags(load_tag_lifecycle(lake, org), org, times[-1])


def test_full_run_replaces_everything_and_splits_by_time(
    copy: tuple[Lake, Settings], spark: SparkSession
) -> None:
    lake, settings = copy
    before = set(_file_set(lake))
    report = preprocess_tags(spark, lake, settings=settings, full=True)
    assert report.partitions_processed == 40 and report.files_deleted == 40
    assert not before & set(_file_set(lake))
    org = report.orgs[0]
    examples = load_examples(lake, org)
    assert examples["created_at"].is_monotonic_increasing
    assert all(isinstance(t, list) for t in examples["tags"])
    train, valid, test = time_split(examples)
    assert len(train) + len(valid) + len(test) == len(examples)
    assert train["created_at"].max() <= valid["created_at"].min()
    assert valid["created_at"].max() <= test["created_at"].min()
    assert pc.sum(_processed(lake).column("text_raw_len")).as_py() > 0

"""The preprocessing job's tag-event cache: every org's lifecycle events as if every raw
event file were read, while only new or rewritten files are.

A real local lake written by ingest; what is counted is what ``read_all_tag_events``
reports it read, and the equality that matters is with reading every file."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from socialsuggest.ingest import ingest_events
from socialsuggest.lake import Lake
from socialsuggest.processing.lifecycle import (
    EVENT_COLUMNS,
    EVENTS_CACHE_KEY,
    TAG_EVENTS,
    TagLifecycle,
    read_all_tag_events,
)

T0 = datetime(2026, 10, 20, tzinfo=UTC)


def _event(tag: str, action: str, at: datetime, org: str = "acme") -> dict[str, Any]:
    return {"event_type": "tag_lifecycle", "schema_version": 1, "org_id": org, "tag": tag,
            "action": action, "at": at.isoformat()}  # fmt: skip


def _every_file(lake: Lake) -> list[dict[str, Any]]:
    """What reading every raw event file gives, as sorted rows (the reference)."""
    keys = [f.key for f in lake.files("raw", TAG_EVENTS)]
    return _rows(lake.read(keys, columns=EVENT_COLUMNS))


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return sorted(
        table.select(EVENT_COLUMNS).to_pylist(), key=lambda r: tuple(map(str, r.values()))
    )


@pytest.fixture
def events_lake(lake: Lake) -> Lake:
    day = timedelta(days=1)
    events = [
        _event("billing", "created", T0),
        _event("refund", "created", T0 + day),
        _event("refund", "archived", T0 + 2 * day),
        _event("billing", "created", T0 + day, org="globex"),
    ]
    assert ingest_events(lake, events).written_total == len(events)
    return lake


def test_the_first_read_reads_every_file_and_the_next_none(events_lake: Lake) -> None:
    first = read_all_tag_events(events_lake)
    n_files = len(events_lake.files("raw", TAG_EVENTS))
    assert first.files == first.files_read == n_files >= 3
    assert _rows(first.table) == _every_file(events_lake)
    assert events_lake.storage.exists(EVENTS_CACHE_KEY)

    again = read_all_tag_events(events_lake)
    assert (again.files, again.files_read) == (n_files, 0)
    assert _rows(again.table) == _every_file(events_lake)


def test_only_a_new_days_file_is_read_and_its_events_count(events_lake: Lake) -> None:
    before = read_all_tag_events(events_lake)
    ingest_events(events_lake, [_event("refund", "created", T0 + timedelta(days=5))])

    after = read_all_tag_events(events_lake)

    assert after.files == before.files + 1 and after.files_read == 1
    assert _rows(after.table) == _every_file(events_lake)
    life = TagLifecycle.from_table(after.table)
    assert life.is_active("acme", "refund", T0 + timedelta(days=6))  # re-created


def test_a_rewritten_file_is_read_again_and_a_deleted_one_drops_out(events_lake: Lake) -> None:
    read_all_tag_events(events_lake)
    files = {f.org: f for f in events_lake.files("raw", TAG_EVENTS)}
    acme = [f for f in events_lake.files("raw", TAG_EVENTS) if f.org == "acme"]
    # a rewrite that removes rows (as a deletion request's rewrite does): another size
    target = next(f for f in acme if events_lake.read_file(f.key).num_rows >= 1)
    table = events_lake.read_file(target.key)
    kept = table.filter(pc.not_equal(table["tag"], table["tag"][0]))
    events_lake.replace(target.key, kept, outbox=False)
    rewritten = {f.key: f.size for f in events_lake.files("raw", TAG_EVENTS)}
    assert rewritten[target.key] != target.size  # what marks a rewrite
    events_lake.delete(files["globex"].key, outbox=False)

    after = read_all_tag_events(events_lake)

    assert after.files_read == 1
    assert _rows(after.table) == _every_file(events_lake)
    assert "globex" not in set(after.table["org_id"].to_pylist())


def test_a_cache_of_another_version_or_an_unreadable_one_is_rebuilt(events_lake: Lake) -> None:
    first = read_all_tag_events(events_lake)
    cached = pq.read_table(io.BytesIO(events_lake.storage.get(EVENTS_CACHE_KEY)))
    other = io.BytesIO()
    pq.write_table(cached.replace_schema_metadata({b"version": b"0"}), other)
    for content in (other.getvalue(), b"not parquet"):
        events_lake.storage.put(EVENTS_CACHE_KEY, content)
        rebuilt = read_all_tag_events(events_lake)
        assert rebuilt.files_read == first.files
        assert _rows(rebuilt.table) == _every_file(events_lake)
    assert read_all_tag_events(events_lake).files_read == 0  # and written again


def test_no_event_files_gives_an_empty_table_with_the_event_columns(lake: Lake) -> None:
    read = read_all_tag_events(lake)
    assert (read.files, read.files_read, read.table.num_rows) == (0, 0, 0)
    assert read.table.column_names == EVENT_COLUMNS
    assert TagLifecycle.from_table(read.table).spans == {}


def test_refresh_reads_every_file_whatever_the_cache_says(events_lake: Lake) -> None:
    """What ``preprocess --full`` asks for: file sizes cannot see a same-size rewrite,
    so cached rows that no longer match their file (made here by editing the cache, as
    such a rewrite would leave it) are only replaced by reading every file."""
    read_all_tag_events(events_lake)
    cache = pq.read_table(io.BytesIO(events_lake.storage.get(EVENTS_CACHE_KEY)))
    stale = cache.set_column(
        cache.column_names.index("tag"), "tag", pa.array(["stale"] * cache.num_rows)
    )
    buffer = io.BytesIO()
    pq.write_table(stale, buffer)
    events_lake.storage.put(EVENTS_CACHE_KEY, buffer.getvalue())

    cached = read_all_tag_events(events_lake)
    refreshed = read_all_tag_events(events_lake, refresh=True)

    assert cached.files_read == 0 and set(cached.table["tag"].to_pylist()) == {"stale"}
    assert refreshed.files_read == refreshed.files
    assert _rows(refreshed.table) == _every_file(events_lake)
    after = read_all_tag_events(events_lake)  # the cache was rewritten
    assert after.files_read == 0 and _rows(after.table) == _every_file(events_lake)

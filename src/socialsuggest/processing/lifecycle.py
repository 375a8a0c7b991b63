"""Tag lifecycle (created / archived events) as activity intervals per (org, tag).

A tag application counts only while the tag is active. Reading the event history as
intervals, rather than as one "latest state" per tag, keeps history correct when a
tag is archived and later re-created: messages from the first active period keep
it, messages from the archived gap do not.

Rules, in event-time order (an ``archived`` and a ``created`` at the same instant:
archived wins, the conservative reading):

* before a tag's first event it is inactive if that event is ``created`` (not yet
  created) and active if it is ``archived`` (it existed before we heard of it);
* ``created`` opens an interval, ``archived`` closes it;
* a tag with no events at all is always active (unknown creation = allowed).

The same intervals drive the Spark filter and the incremental bookkeeping, so what
decides whether a partition must be recomputed is exactly what decides its content.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from socialsuggest.lake import Lake

logger = logging.getLogger(__name__)

TAG_EVENTS = "tag_events"
EVENT_COLUMNS = ["org_id", "tag", "action", "at"]
#: Every raw event file's rows as last read (no actor ids), with the file's key and size.
EVENTS_CACHE_KEY = "_state/processing/tag_events.parquet"
_CACHE_VERSION = b"1"
_SOURCE, _SIZE = "source_key", "source_size"
_ACTION_ORDER = {"created": 0, "archived": 1}

Span = tuple[datetime | None, datetime | None]  # [start, end); None = unbounded


def _no_events() -> pa.Table:
    return pa.table(
        {
            "org_id": pa.array([], pa.string()),
            "tag": pa.array([], pa.string()),
            "action": pa.array([], pa.string()),
            "at": pa.array([], pa.timestamp("us", tz="UTC")),
        }
    )


def read_tag_events(lake: Lake, org: str | None = None) -> pa.Table:
    """Raw tag lifecycle events (no actor ids: nobody downstream needs them).

    One org's are read from its own files; every org's (``org=None``) through
    :func:`read_all_tag_events`, which reads only the files that changed.
    """
    if org is None:
        return read_all_tag_events(lake).table
    files = lake.files("raw", TAG_EVENTS, orgs=[org])
    if not files:
        return _no_events()
    return lake.read([f.key for f in files], columns=EVENT_COLUMNS)


@dataclass(frozen=True)
class EventsRead:
    """Every org's lifecycle events, and what reading them cost."""

    table: pa.Table
    files: int  # raw event files in the lake
    files_read: int  # of which read now (new or rewritten since the cache was written)


def read_all_tag_events(lake: Lake, *, refresh: bool = False) -> EventsRead:
    """Every org's tag events, reading only the raw files new or changed since last time.

    Ingest writes an event file per partition and flush, each holding a row or two, and
    the preprocessing job and the retrain plan both need all of them every day:
    re-reading the whole history took 160 of the 185 s of a one-day preprocessing
    increment at 1,000 orgs (76k files of 29 days, 2026-12-03), and would grow with
    every day kept. So the rows are cached in the lake
    (:data:`EVENTS_CACHE_KEY`) with the key and size of the file each came from; a
    file listed with another size (a GDPR rewrite) is read again and one no longer
    listed (retention, deletion) drops out, the same rule the job's partition state
    uses. The cache holds no actor ids, is rebuilt when missing or of another version,
    and is only an optimisation: the result equals reading every file. ``refresh``
    reads every file and rewrites the cache (``preprocess --full``: a same-size
    rewrite is the one change sizes cannot see).
    """
    listed = {f.key: f.size for f in lake.files("raw", TAG_EVENTS)}
    cached = _cache_schema_empty() if refresh else _load_cache(lake)
    if cached.num_rows:
        sources = cached.column(_SOURCE).to_pylist()
        sizes = cached.column(_SIZE).to_pylist()
        keep = [listed.get(k) == size for k, size in zip(sources, sizes, strict=True)]
        known = {k for k, kept in zip(sources, keep, strict=True) if kept}
        dropped = len(keep) - sum(keep)
        cached = cached.filter(pa.array(keep, pa.bool_()))
    else:
        known, dropped = set(), 0
    fresh = sorted(k for k in listed if k not in known)
    parts = [cached] if cached.num_rows else []
    for key in fresh:
        table = lake.read_file(key, EVENT_COLUMNS).select(EVENT_COLUMNS)
        n = table.num_rows
        table = table.append_column(_SOURCE, pa.array([key] * n, pa.string()))
        parts.append(table.append_column(_SIZE, pa.array([listed[key]] * n, pa.int64())))
    table = pa.concat_tables(parts, promote_options="default") if parts else _cache_schema_empty()
    if fresh or dropped or refresh:
        _save_cache(lake, table)
    logger.info("tag events: %d files, %d read, %d rows from files gone or rewritten dropped",
                len(listed), len(fresh), dropped)  # fmt: skip
    return EventsRead(table.select(EVENT_COLUMNS), len(listed), len(fresh))


def _cache_schema_empty() -> pa.Table:
    empty = _no_events()
    empty = empty.append_column(_SOURCE, pa.array([], pa.string()))
    return empty.append_column(_SIZE, pa.array([], pa.int64()))


def _load_cache(lake: Lake) -> pa.Table:
    """The cached rows, or none when there is no cache or it is of another version."""
    if not lake.storage.exists(EVENTS_CACHE_KEY):
        return _cache_schema_empty()
    try:
        table = pq.read_table(io.BytesIO(lake.storage.get(EVENTS_CACHE_KEY)))
    except (pa.ArrowInvalid, OSError) as exc:  # writes are atomic; still, never fatal
        logger.warning("%s unreadable (%s): rebuilt", EVENTS_CACHE_KEY, type(exc).__name__)
        return _cache_schema_empty()
    if (table.schema.metadata or {}).get(b"version") != _CACHE_VERSION:
        return _cache_schema_empty()
    missing = {*EVENT_COLUMNS, _SOURCE, _SIZE} - set(table.column_names)
    return _cache_schema_empty() if missing else table


def _save_cache(lake: Lake, table: pa.Table) -> None:
    order = pc.sort_indices(table, [(_SOURCE, "ascending")])  # stable bytes for a file set
    table = table.take(order).replace_schema_metadata({b"version": _CACHE_VERSION})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    lake.storage.put(EVENTS_CACHE_KEY, buffer.getvalue())


def _day_bounds(dt: date) -> tuple[datetime, datetime]:
    start = datetime.combine(dt, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def _spans(events: list[tuple[datetime, str]]) -> list[Span]:
    ordered = sorted(set(events), key=lambda e: (e[0], _ACTION_ORDER.get(e[1], 2)))
    active = ordered[0][1] == "archived"
    start: datetime | None = None
    spans: list[Span] = []
    for at, action in ordered:
        if action == "created" and not active:
            active, start = True, at
        elif action == "archived" and active:
            spans.append((start, at))
            active = False
    if active:
        spans.append((start, None))
    return spans


@dataclass
class TagLifecycle:
    """Activity intervals of every tag that has lifecycle events."""

    spans: dict[tuple[str, str], list[Span]] = field(default_factory=dict)

    @classmethod
    def from_table(cls, events: pa.Table) -> TagLifecycle:
        grouped: dict[tuple[str, str], list[tuple[datetime, str]]] = defaultdict(list)
        for row in events.select(EVENT_COLUMNS).to_pylist():
            grouped[(row["org_id"], row["tag"])].append((row["at"], row["action"]))
        return cls({key: _spans(evts) for key, evts in grouped.items()})

    @classmethod
    def load(cls, lake: Lake, org: str | None = None) -> TagLifecycle:
        return cls.from_table(read_tag_events(lake, org))

    def is_active(self, org: str, tag: str, at: datetime) -> bool:
        spans = self.spans.get((org, tag))
        if spans is None:
            return True
        return any((s is None or s <= at) and (e is None or at < e) for s, e in spans)

    def day_fingerprint(self, org: str, dt: date, tags: Iterable[str]) -> str:
        """What the lifecycle means for these tags on this day, as a short hash.

        Only the intervals clipped to the day matter for messages of that day, so a
        tag created or archived on another day leaves the fingerprint (and the
        processed partition) untouched. A tag without events counts as active all day,
        which is what the filter does with it.
        """
        day_start, day_end = _day_bounds(dt)
        described: dict[str, list[list[str]]] = {}
        for tag in sorted(set(tags)):
            spans = self.spans.get((org, tag), [(None, None)])
            clipped = []
            for s, e in spans:
                lo = max(s, day_start) if s is not None else day_start
                hi = min(e, day_end) if e is not None else day_end
                if lo < hi:
                    clipped.append([lo.isoformat(), hi.isoformat()])
            described[tag] = clipped
        payload = json.dumps(described, sort_keys=True).encode()
        return hashlib.blake2b(payload, digest_size=12).hexdigest()

    def rows(self, orgs: Iterable[str] | None = None) -> list[dict[str, object]]:
        """One row per known tag with its spans, for the Spark broadcast join."""
        wanted = set(orgs) if orgs is not None else None
        return [
            {"org_id": org, "tag": tag, "spans": [{"start": s, "end": e} for s, e in spans]}
            for (org, tag), spans in sorted(self.spans.items())
            if wanted is None or org in wanted
        ]

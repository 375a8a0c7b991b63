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
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import pyarrow as pa

from socialsuggest.lake import Lake

TAG_EVENTS = "tag_events"
EVENT_COLUMNS = ["org_id", "tag", "action", "at"]
_ACTION_ORDER = {"created": 0, "archived": 1}

Span = tuple[datetime | None, datetime | None]  # [start, end); None = unbounded


def read_tag_events(lake: Lake, org: str | None = None) -> pa.Table:
    """Raw tag lifecycle events (no actor ids: nobody downstream needs them)."""
    files = lake.files("raw", TAG_EVENTS, orgs=[org] if org is not None else None)
    if not files:
        return pa.table(
            {
                "org_id": pa.array([], pa.string()),
                "tag": pa.array([], pa.string()),
                "action": pa.array([], pa.string()),
                "at": pa.array([], pa.timestamp("us", tz="UTC")),
            }
        )
    return lake.read([f.key for f in files], columns=EVENT_COLUMNS)


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

"""Acceptance of served suggestions: how many suggested tags users actually applied.

One definition, used live (the serving process) and daily (the lake's logs), so the
two numbers can be compared:

- **shown**: one per suggestion in a served response, counted by the suggestion's
  ``source`` (``model`` or ``recent``) and the model version that served it;
- **accepted**: a *suggested* tag that a feedback for the same request (and the same
  org) lists in ``accepted``. A tag the user applied that was not suggested is not an
  acceptance of a suggestion, and a tag accepted twice (a repeated feedback, or a
  feedback row the at-least-once request log wrote twice) counts once;
- **rate** = accepted ÷ shown (``None`` when nothing was shown).

:class:`LiveAcceptance` keeps the live numbers since process start: it remembers the
last ``capacity`` served requests (org, version, suggested tags with their source)
so that a feedback can be matched without any I/O; feedback for a request it no
longer (or never) remembered cannot count, and says so in ``feedback_unknown``.

:func:`daily_acceptance` is the pure daily computation over one day's
``logs/tag_requests`` and ``logs/feedback`` tables, with a Wilson 95% interval per
rate: a day with 20 suggestions for an org says much less than one with 20,000, and
the floor check should not page anybody over the former (``min_shown``).

Everything here is counts keyed by org, model version and source: no message text
and no author or agent ids, so the numbers can go to Prometheus, MLflow and audit
reports freely.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

SOURCES = ("model", "recent")
#: Two-sided 95% normal quantile (the Wilson interval's z).
Z95 = 1.959963984540054
#: How many served requests the live tracker remembers for matching feedback.
DEFAULT_CAPACITY = 100_000

Key = tuple[str, int, str]  # (org, model_version, source)


def acceptance_rate(accepted: int, shown: int) -> float | None:
    return accepted / shown if shown > 0 else None


def wilson_interval(accepted: int, shown: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of ``accepted / shown``: unlike the normal approximation it
    stays inside [0, 1] and is honest for small counts and rates near 0 or 1."""
    if shown <= 0:
        return None
    if not 0 <= accepted <= shown:
        raise ValueError(f"accepted: {accepted} is not within 0..{shown} shown")
    p = accepted / shown
    z2 = z * z
    denominator = 1 + z2 / shown
    centre = (p + z2 / (2 * shown)) / denominator
    half = z * math.sqrt(p * (1 - p) / shown + z2 / (4 * shown * shown)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Tally:
    """Shown and accepted suggestions of some slice (an org, a version, a source)."""

    shown: int = 0
    accepted: int = 0

    @property
    def rate(self) -> float | None:
        return acceptance_rate(self.accepted, self.shown)

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.accepted, self.shown)

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.shown + other.shown, self.accepted + other.accepted)

    def as_dict(self) -> dict[str, Any]:
        interval = self.interval
        return {
            "shown": self.shown,
            "accepted": self.accepted,
            "rate": self.rate,
            "ci95_low": interval[0] if interval else None,
            "ci95_high": interval[1] if interval else None,
        }


def suggested_tags(suggestions: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """tag → source of one response (a tag suggested twice is shown once, first source)."""
    tags: dict[str, str] = {}
    for suggestion in suggestions:
        tags.setdefault(str(suggestion["tag"]), str(suggestion["source"]))
    return tags


# ---- live (serving process) ---------------------------------------------------------
class AcceptanceCounts(BaseModel):
    shown: int = Field(description="suggestions served")
    accepted: int = Field(description="of those, suggested tags a feedback said were applied")
    rate: float | None = Field(description="accepted / shown; null when nothing was shown")


class VersionAcceptance(AcceptanceCounts):
    by_source: dict[str, AcceptanceCounts]


class LiveAcceptanceReport(AcceptanceCounts):
    org: str
    since: datetime = Field(description="process start: the numbers cover this process only")
    by_source: dict[str, AcceptanceCounts] = Field(description="`model` and `recent`")
    by_model_version: dict[str, VersionAcceptance] = Field(
        description="per model version that served the suggestions"
    )


def _counts(tally: Tally) -> AcceptanceCounts:
    return AcceptanceCounts(shown=tally.shown, accepted=tally.accepted, rate=tally.rate)


@dataclass(slots=True)
class _Served:
    org: str
    version: int
    tags: dict[str, str]  # tag -> source
    accepted: set[str]


class LiveAcceptance:
    """Shown / accepted counts since process start, fed by the suggest and feedback routes.

    Thread-safe (the routes run in a thread pool). Memory is bounded: the last
    ``capacity`` requests are remembered for matching (the oldest is forgotten
    first); the counts themselves are per (org, version, source) and never forgotten.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity: must be at least 1")
        self.capacity = capacity
        self.since = datetime.now(UTC)
        self._served: OrderedDict[str, _Served] = OrderedDict()
        self._shown: dict[Key, int] = {}
        self._accepted: dict[Key, int] = {}
        self._lock = threading.Lock()
        self.feedback_matched = 0
        self.feedback_unknown = 0
        self.forgotten = 0

    def served(
        self, request_id: str, org: str, version: int, suggestions: Iterable[Mapping[str, Any]]
    ) -> None:
        """Remember one served response and count its suggestions as shown."""
        tags = suggested_tags(suggestions)
        with self._lock:
            self._served[request_id] = _Served(org, int(version), tags, set())
            self._served.move_to_end(request_id)
            while len(self._served) > self.capacity:
                self._served.popitem(last=False)
                self.forgotten += 1
            for source in tags.values():
                key = (org, int(version), source)
                self._shown[key] = self._shown.get(key, 0) + 1

    def feedback(self, request_id: str, org: str, accepted: Iterable[str]) -> int | None:
        """Count the newly accepted suggested tags; None if the request is unknown here
        (never served by this process, forgotten, or served for another org)."""
        with self._lock:
            served = self._served.get(request_id)
            if served is None or served.org != org:
                self.feedback_unknown += 1
                return None
            self.feedback_matched += 1
            new = [t for t in dict.fromkeys(accepted) if t in served.tags]
            new = [t for t in new if t not in served.accepted]
            for tag in new:
                served.accepted.add(tag)
                key = (org, served.version, served.tags[tag])
                self._accepted[key] = self._accepted.get(key, 0) + 1
            return len(new)

    def tallies(self) -> dict[Key, Tally]:
        """Every (org, version, source) seen so far with its counts (a consistent copy)."""
        with self._lock:
            return {
                key: Tally(shown, self._accepted.get(key, 0)) for key, shown in self._shown.items()
            }

    @property
    def remembered(self) -> int:
        return len(self._served)

    def report(self, org: str) -> LiveAcceptanceReport:
        mine = {key: tally for key, tally in self.tallies().items() if key[0] == org}
        total = sum(mine.values(), Tally())
        by_source = {s: sum((t for k, t in mine.items() if k[2] == s), Tally()) for s in SOURCES}
        versions: dict[str, VersionAcceptance] = {}
        for version in sorted({k[1] for k in mine}):
            slices = {s: mine.get((org, version, s), Tally()) for s in SOURCES}
            both = sum(slices.values(), Tally())
            versions[str(version)] = VersionAcceptance(
                **_counts(both).model_dump(),
                by_source={s: _counts(t) for s, t in slices.items()},
            )
        return LiveAcceptanceReport(
            org=org,
            since=self.since,
            **_counts(total).model_dump(),
            by_source={s: _counts(t) for s, t in by_source.items()},
            by_model_version=versions,
        )


# ---- daily (lake logs) --------------------------------------------------------------
#: The columns the daily computation reads: counts only, never text or person ids.
REQUEST_COLUMNS = ["request_id", "org_id", "model_version", "suggestions"]
FEEDBACK_COLUMNS = ["request_id", "org_id", "accepted"]


@dataclass(frozen=True)
class AcceptanceRow:
    org: str
    model_version: int
    source: str
    tally: Tally

    def as_dict(self) -> dict[str, Any]:
        return {
            "org": self.org,
            "model_version": self.model_version,
            "source": self.source,
            **self.tally.as_dict(),
        }


@dataclass(frozen=True)
class DailyAcceptance:
    """One day's acceptance per (org, model version, source), with totals per org."""

    rows: tuple[AcceptanceRow, ...]
    requests: int  # distinct served requests
    duplicate_requests: int  # extra copies the at-least-once log wrote
    feedback: int  # feedback rows
    unmatched_feedback: int  # feedback whose request was not served that day (for that org)

    def orgs(self) -> dict[str, Tally]:
        totals: dict[str, Tally] = {}
        for row in self.rows:
            totals[row.org] = totals.get(row.org, Tally()) + row.tally
        return dict(sorted(totals.items()))

    def total(self) -> Tally:
        return sum((row.tally for row in self.rows), Tally())

    def below_floor(self, floor: float, min_shown: int) -> dict[str, Tally]:
        """Orgs with at least ``min_shown`` suggestions whose rate is under ``floor``."""
        return {
            org: tally
            for org, tally in self.orgs().items()
            if tally.shown >= min_shown and (tally.rate or 0.0) < floor
        }

    def summary(self) -> dict[str, Any]:
        return {
            **self.total().as_dict(),
            "requests": self.requests,
            "duplicate_requests": self.duplicate_requests,
            "feedback": self.feedback,
            "unmatched_feedback": self.unmatched_feedback,
            "orgs": {org: tally.as_dict() for org, tally in self.orgs().items()},
            "rows": [row.as_dict() for row in self.rows],
        }


def daily_acceptance(requests: Any, feedback: Any) -> DailyAcceptance:
    """Acceptance from one day's ``logs/tag_requests`` and ``logs/feedback`` (Arrow tables
    with at least :data:`REQUEST_COLUMNS` / :data:`FEEDBACK_COLUMNS`).

    A feedback counts only against a request of the same org served in ``requests``:
    feedback arriving the next day for a late-evening request is not counted (the job
    runs once the day is over, and a report must not change when re-run later).
    """
    served: dict[tuple[str, str], tuple[int, dict[str, str]]] = {}
    duplicates = 0
    for row in requests.select(REQUEST_COLUMNS).to_pylist():
        key = (str(row["org_id"]), str(row["request_id"]))
        if key in served:
            duplicates += 1
            continue
        served[key] = (int(row["model_version"]), suggested_tags(row["suggestions"] or []))

    accepted: dict[tuple[str, str], set[str]] = {}
    unmatched = 0
    feedback_rows = feedback.select(FEEDBACK_COLUMNS).to_pylist()
    for row in feedback_rows:
        key = (str(row["org_id"]), str(row["request_id"]))
        if key not in served:
            unmatched += 1
            continue
        tags = served[key][1]
        accepted.setdefault(key, set()).update(t for t in row["accepted"] or [] if t in tags)

    shown_by: dict[Key, int] = {}
    accepted_by: dict[Key, int] = {}
    for (org, request_id), (version, tags) in served.items():
        applied = accepted.get((org, request_id), set())
        for tag, source in tags.items():
            slot = (org, version, source)
            shown_by[slot] = shown_by.get(slot, 0) + 1
            if tag in applied:
                accepted_by[slot] = accepted_by.get(slot, 0) + 1
    rows = tuple(
        AcceptanceRow(*slot, Tally(shown, accepted_by.get(slot, 0)))
        for slot, shown in sorted(shown_by.items())
    )
    return DailyAcceptance(
        rows=rows,
        requests=len(served),
        duplicate_requests=duplicates,
        feedback=len(feedback_rows),
        unmatched_feedback=unmatched,
    )

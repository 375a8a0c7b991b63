"""Events → raw lake partitions; bad records → quarantine with their reasons.

Guarantees an operator can check: every input record is accounted for
(``records_in == written + quarantined + duplicates``), re-ingesting the same data
writes nothing (idempotent by event key, checked against what the lake already
holds, so no side database can drift from it), and a record whose key was seen
with *different* content is quarantined as a conflict rather than silently
overwriting or dropping either version.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from socialsuggest.events import DATASETS, LATEST, Event, EventValidationError, parse_event
from socialsuggest.events.schemas import ORG_PATTERN, MessageV1, personal_field_names
from socialsuggest.ingest.readers import Record, Undecodable, read_records, source_files
from socialsuggest.lake import UNKNOWN_ORG, Lake, LakeObject

Partition = tuple[str, date, str]  # (dataset, dt, org)
QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("errors", pa.list_(pa.struct([("field", pa.string()), ("reason", pa.string())]))),
        pa.field("record", pa.string(), nullable=False),
        pa.field("record_hash", pa.string(), nullable=False),
        pa.field("event_type", pa.string()),
        pa.field("org_id", pa.string()),
        pa.field("subject_ids", pa.list_(pa.string())),
        pa.field("quarantined_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
_CACHE_LIMIT = 2_000_000  # known keys kept in memory before the cache is reset


@dataclass
class IngestReport:
    """What one ingest did; the counts reconcile by construction and are checked."""

    records_in: int = 0
    written: Counter[str] = field(default_factory=Counter)
    quarantined: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    suppressed: int = 0  # about subjects a deletion request erased: never written
    files: list[str] = field(default_factory=list)
    objects: list[LakeObject] = field(default_factory=list)
    orgs: set[str] = field(default_factory=set)
    tags: set[tuple[str, str]] = field(default_factory=set)

    @property
    def written_total(self) -> int:
        return sum(self.written.values())

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    def reconciles(self) -> bool:
        return self.records_in == (
            self.written_total + self.quarantined_total + self.duplicates + self.suppressed
        )

    def summary(self) -> dict[str, Any]:
        return {
            "records_in": self.records_in,
            "written": dict(self.written),
            "quarantined": dict(self.quarantined),
            "duplicates_skipped": self.duplicates,
            "suppressed_erased": self.suppressed,
            "files_read": len(self.files),
            "objects_written": len(self.objects),
            "orgs": len(self.orgs),
            "distinct_tags": len(self.tags),
        }


def _bad_record_subjects(record: Any, names: frozenset[str]) -> set[str]:
    """Person identifiers in a record we could not validate: it is personal data too."""
    found: set[str] = set()
    if isinstance(record, Mapping):
        for key, value in record.items():
            if key in names and isinstance(value, str | int) and str(value).strip():
                found.add(str(value).strip())
            elif isinstance(value, Mapping | list):
                found |= _bad_record_subjects(value, names)
    elif isinstance(record, list):
        for item in record:
            found |= _bad_record_subjects(item, names)
    return found


class ErasedSubjects(Protocol):
    """Subjects a deletion request erased (see ``socialsuggest.privacy.tombstones``)."""

    def hit(self, subject_ids: Iterable[str], at: datetime | None) -> bool: ...


class Ingestor:
    """Buffers valid rows per partition and flushes them as Parquet part files."""

    def __init__(
        self,
        lake: Lake,
        *,
        flush_rows: int = 50_000,
        default_type: str | None = None,
        progress: Callable[[int], None] | None = None,
        erased: ErasedSubjects | None = None,
    ) -> None:
        if default_type is not None and default_type not in LATEST:
            raise ValueError(f"event_type: unknown default {default_type!r} ({sorted(LATEST)})")
        self.lake = lake
        self.flush_rows = flush_rows
        self.default_type = default_type
        self.progress = progress
        self.erased = erased
        self.report = IngestReport()
        self._buffers: dict[Partition, list[dict[str, Any]]] = defaultdict(list)
        self._subjects: dict[Partition, set[str]] = defaultdict(set)
        self._known: dict[Partition, dict[str, str]] = {}
        self._known_size = 0
        self._buffered = 0
        self._quarantine: list[dict[str, Any]] = []
        self._quarantined_hashes: set[str] | None = None
        self._personal = personal_field_names()
        self._now = datetime.now(UTC)

    # ---- entry points -------------------------------------------------------------
    def ingest_paths(self, paths: Iterable[Path]) -> IngestReport:
        for path in source_files(list(paths)):
            self.report.files.append(str(path))
            self.ingest_records(read_records(path))
        return self.finish()

    def ingest_records(self, records: Iterable[tuple[str, Record]]) -> None:
        """Feed ``(location, record)`` pairs; call :meth:`finish` when done."""
        for location, record in records:
            self._one(location, record)
            if self.progress is not None:
                self.progress(1)
            if self._buffered >= self.flush_rows:
                self._flush(until=self.flush_rows // 2)
            if len(self._quarantine) >= self.flush_rows:
                self._flush_quarantine()

    def finish(self) -> IngestReport:
        self._flush(until=0)
        self._flush_quarantine()
        if not self.report.reconciles():  # pragma: no cover - a bug, never bad input
            raise AssertionError(f"ingest counts do not reconcile: {self.report.summary()}")
        return self.report

    # ---- one record -------------------------------------------------------------
    def _one(self, location: str, record: Record) -> None:
        self.report.records_in += 1
        if isinstance(record, Undecodable):
            self._reject(location, record.raw, [("record", record.reason)], None)
            return
        try:
            event = parse_event(record, self.default_type)
        except EventValidationError as exc:
            self._reject(location, record, [(e.field, e.reason) for e in exc.errors], None)
            return
        if self.erased is not None and self.erased.hit(event.subject_ids(), event.event_time):
            self.report.suppressed += 1
            return
        partition = (event.dataset, event.event_time.date(), event.org)
        known = self._known_keys(partition)
        digest = event.content_hash()
        seen = known.get(event.key)
        if seen == digest:
            self.report.duplicates += 1
            return
        if seen is not None:
            reason = "conflicts with an already ingested event with the same key"
            self._reject(location, record, [("key", f"{event.key} {reason}")], event)
            return
        known[event.key] = digest
        self._known_size += 1
        self._buffers[partition].append(self._row(event, digest, location))
        self._subjects[partition] |= event.subject_ids()
        self._buffered += 1
        self.report.written[event.dataset] += 1
        self.report.orgs.add(event.org)
        if isinstance(event, MessageV1):
            self.report.tags.update((event.org_id, t.tag) for t in event.tags)

    def _row(self, event: Event, digest: str, location: str) -> dict[str, Any]:
        row: dict[str, Any] = event.row()
        row.update(_key=event.key, _record_hash=digest, _source=location, _ingested_at=self._now)
        return row

    def _known_keys(self, partition: Partition) -> dict[str, str]:
        known = self._known.get(partition)
        if known is None:
            if self._known_size > _CACHE_LIMIT:
                self._known = {p: k for p, k in self._known.items() if p in self._buffers}
                self._known_size = sum(len(k) for k in self._known.values())
            known = self._load_known(partition)
            self._known[partition] = known
            self._known_size += len(known)
        return known

    def _load_known(self, partition: Partition) -> dict[str, str]:
        dataset, dt, org = partition
        files = self.lake.files("raw", dataset, dt_from=dt, dt_to=dt, orgs=[org])
        if not files:
            return {}
        table = self.lake.read([f.key for f in files], columns=["_key", "_record_hash"])
        return dict(zip(table["_key"].to_pylist(), table["_record_hash"].to_pylist(), strict=True))

    def _reject(
        self,
        location: str,
        record: Any,
        errors: list[tuple[str, str]],
        event: Event | None,
    ) -> None:
        subjects = sorted(_bad_record_subjects(record, self._personal))
        if self.erased is not None and self.erased.hit(subjects, None):
            self.report.suppressed += 1  # quarantining it would store the erased data again
            return
        raw = record if isinstance(record, str) else json.dumps(record, default=str, sort_keys=True)
        # Location is part of the identity: two identical broken lines are two records,
        # but the same line of the same file ingested again is a duplicate.
        record_hash = hashlib.blake2b(f"{location}\n{raw}".encode(), digest_size=16).hexdigest()
        known = self._known_quarantined()
        if record_hash in known:  # the same bad record again: already in quarantine
            self.report.duplicates += 1
            return
        known.add(record_hash)
        event_type = event.event_type if event else _str_or_none(record, "event_type")
        org = event.org if event else _str_or_none(record, "org_id")
        self._quarantine.append(
            {
                "source": location,
                "reason": "; ".join(f"{f}: {r}" for f, r in errors),
                "errors": [{"field": f, "reason": r} for f, r in errors],
                "record": raw,
                "record_hash": record_hash,
                "event_type": event_type,
                "org_id": org,
                "subject_ids": subjects,
                "quarantined_at": self._now,
            }
        )
        dataset = LATEST[event_type].dataset if event_type in LATEST else "unknown"
        self.report.quarantined[dataset] += 1

    def _known_quarantined(self) -> set[str]:
        """Hashes of records already in quarantine (small: read whole, once per ingest)."""
        if self._quarantined_hashes is None:
            files = self.lake.files("quarantine")
            self._quarantined_hashes = (
                set(
                    self.lake.read([f.key for f in files], ["record_hash"])[
                        "record_hash"
                    ].to_pylist()
                )
                if files
                else set()
            )
        return self._quarantined_hashes

    # ---- flushing ---------------------------------------------------------------
    def _flush(self, until: int) -> None:
        """Write the biggest buffers first until at most ``until`` rows stay buffered."""
        with self.lake.outbox_batch():
            self._flush_buffers(until)

    def _flush_buffers(self, until: int) -> None:
        for partition in sorted(self._buffers, key=lambda p: -len(self._buffers[p])):
            if self._buffered <= until:
                break
            rows = self._buffers.pop(partition)
            subjects = self._subjects.pop(partition)
            dataset, dt, org = partition
            table = pa.Table.from_pylist(rows, schema=DATASETS[dataset].arrow_schema())
            self.report.objects.append(self.lake.write("raw", dataset, dt, org, table, subjects))
            self._buffered -= len(rows)

    def _flush_quarantine(self) -> None:
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for row in self._quarantine:
            event_type = row["event_type"]
            dataset = LATEST[event_type].dataset if event_type in LATEST else "unknown"
            org = row["org_id"] if _safe_org(row["org_id"]) else UNKNOWN_ORG
            groups[(dataset, org)].append(row)
        for (dataset, org), rows in sorted(groups.items()):
            table = pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)
            subjects = {s for r in rows for s in r["subject_ids"]}
            self.report.objects.append(
                self.lake.write("quarantine", dataset, self._now.date(), org, table, subjects)
            )
        self._quarantine.clear()


def _str_or_none(record: Any, name: str) -> str | None:
    if isinstance(record, Mapping):
        value = record.get(name)
        return str(value) if value not in (None, "") else None
    return None


def _safe_org(org: str | None) -> bool:
    return bool(org) and ORG_PATTERN.fullmatch(org or "") is not None


def ingest_paths(
    lake: Lake,
    paths: Iterable[Path],
    *,
    flush_rows: int = 50_000,
    default_type: str | None = None,
    progress: Callable[[int], None] | None = None,
    erased: ErasedSubjects | None = None,
) -> IngestReport:
    """Ingest files (JSONL, CSV, Parquet, or directories of them) into the lake."""
    ingestor = Ingestor(
        lake, flush_rows=flush_rows, default_type=default_type, progress=progress, erased=erased
    )
    return ingestor.ingest_paths(paths)


def ingest_events(
    lake: Lake,
    records: Iterable[Mapping[str, Any]],
    *,
    source: str = "python",
    default_type: str | None = None,
    erased: ErasedSubjects | None = None,
) -> IngestReport:
    """Ingest records handed over in Python (e.g. from a DAG task or a test)."""
    ingestor = Ingestor(lake, default_type=default_type, erased=erased)
    ingestor.ingest_records(
        (f"{source}:{i}", dict(r) if isinstance(r, Mapping) else r)  # type: ignore[misc]
        for i, r in enumerate(records, start=1)
    )
    return ingestor.finish()

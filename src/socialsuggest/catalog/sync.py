"""Keep the catalog equal to the lake: drain the outbox, reconcile what it missed.

The lake never waits for the catalog: each write leaves a record in the outbox and
:func:`sync_outbox` applies them in order, deleting each outbox file once its records
are in the catalog (outbox files list subject ids, so they must not linger). What an
outbox cannot cover (a writer killed between the data file and its outbox record, an
outbox file deleted by hand, a catalog restored from an old snapshot) is repaired by
:func:`reconcile`, which compares the lake listing with the catalog and recomputes
the documents that differ from the files themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from socialsuggest.catalog.base import Catalog, from_doc
from socialsuggest.lake import PERSONAL_ZONES, Lake, LakeObject

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass
class SyncReport:
    outbox_files: int = 0
    upserted: int = 0
    removed: int = 0

    def summary(self) -> dict[str, int]:
        return {
            "outbox_files": self.outbox_files,
            "upserted": self.upserted,
            "removed": self.removed,
        }


def sync_outbox(
    lake: Lake,
    catalog: Catalog,
    *,
    batch_records: int = 5_000,
    progress: Progress | None = None,
) -> SyncReport:
    """Apply every pending outbox file to the catalog, oldest first; idempotent.

    Files are applied in batches (one bulk write per ~``batch_records`` records, not
    per file: Elasticsearch waits for a refresh on each bulk call), folding the
    records in order so the result equals applying them one by one. A file is deleted
    only after the bulk holding its records succeeded: a crash re-applies it.
    """
    report = SyncReport()
    upserts: dict[str, LakeObject] = {}
    removals: dict[str, None] = {}  # ordered set
    consumed: list[str] = []
    pending = 0

    def flush() -> None:
        nonlocal upserts, removals, consumed, pending
        catalog.remove(list(removals))
        catalog.upsert(list(upserts.values()))
        for key in consumed:
            lake.drop_outbox(key)
        report.outbox_files += len(consumed)
        report.upserted += len(upserts)
        report.removed += len(removals)
        if progress and consumed:
            progress(f"indexed {len(consumed)} outbox files ({len(upserts)} upserts, "
                     f"{len(removals)} deletes)")  # fmt: skip
        upserts, removals, consumed, pending = {}, {}, [], 0

    for key in lake.outbox_files():
        for record in lake.read_outbox(key):
            path = str(record["path"])
            if record.get("op") == "delete":
                upserts.pop(path, None)
                removals[path] = None
            else:
                upserts[path] = from_doc(record)
                removals.pop(path, None)
            pending += 1
        consumed.append(key)
        if pending >= batch_records:
            flush()
    if consumed:
        flush()
    return report


@dataclass
class ReconcileReport:
    lake_objects: int = 0
    catalog_docs: int = 0
    missing: list[str] = field(default_factory=list)  # in the lake, not in the catalog
    stale: list[str] = field(default_factory=list)  # in the catalog, gone from the lake
    changed: list[str] = field(default_factory=list)  # size differs: re-described

    @property
    def in_sync(self) -> bool:
        return not (self.missing or self.stale or self.changed)

    def summary(self) -> dict[str, int]:
        return {
            "lake_objects": self.lake_objects,
            "catalog_docs": self.catalog_docs,
            "missing_indexed": len(self.missing),
            "stale_removed": len(self.stale),
            "changed_reindexed": len(self.changed),
        }


def reconcile(
    lake: Lake,
    catalog: Catalog,
    *,
    zones: tuple[str, ...] = PERSONAL_ZONES,
    repair: bool = True,
    progress: Progress | None = None,
) -> ReconcileReport:
    """Make the catalog match the lake listing (after draining the outbox)."""
    if repair:
        sync_outbox(lake, catalog, progress=progress)
    report = ReconcileReport()
    listed = {part.key: part.size for zone in zones for part in lake.files(zone)}
    indexed = {doc.path: doc.bytes for doc in catalog.iter_all() if doc.zone in zones}
    report.lake_objects, report.catalog_docs = len(listed), len(indexed)
    report.missing = sorted(set(listed) - set(indexed))
    report.stale = sorted(set(indexed) - set(listed))
    report.changed = sorted(k for k in set(listed) & set(indexed) if listed[k] != indexed[k])
    if repair:
        batch: list[LakeObject] = []
        for key in [*report.missing, *report.changed]:
            batch.append(lake.describe(key))
            if len(batch) >= 500:
                catalog.upsert(batch)
                batch = []
        catalog.upsert(batch)
        catalog.remove(report.stale)
        if progress and not report.in_sync:
            progress(f"reconciled: {report.summary()}")
    return report

"""The data lake: Parquet partitions ``<zone>/<dataset>/dt=YYYY-MM-DD/org=<org>/``.

Zones are ``raw`` (as ingested), ``processed`` (Spark outputs), ``quarantine`` (bad
records with their reasons), ``logs`` (serving requests and feedback) and ``audit``.
Partitioning by day and org is what lets retention purge by day, deletion requests
touch only the files that hold a subject, and training read one org without scanning the others.

Every object written or replaced emits a metadata record to a catalog *outbox*
(``_catalog/outbox/*.json``) in the same lake; the GDPR catalog (issue #5) indexes
that outbox, so a write never depends on the catalog being up.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from socialsuggest.config import Settings
from socialsuggest.lake.storage import LocalStorage, ObjectInfo, Storage, open_storage

ZONES = ("raw", "processed", "quarantine", "logs", "audit")
#: Zones holding personal data: their objects get a retention date and are erasable.
PERSONAL_ZONES = ("raw", "processed", "quarantine", "logs")
OUTBOX_PREFIX = "_catalog/outbox"
UNKNOWN_ORG = "_unknown"
_PART = re.compile(
    r"^(?P<zone>[^/]+)/(?P<dataset>[^/]+)/dt=(?P<dt>\d{4}-\d{2}-\d{2})/org=(?P<org>[^/]+)/"
    r"(?P<name>[^/]+\.parquet)$"
)


#: Up to this many orgs a listing reads each org's own folders (one listing per day and
#: org); for more, each day's folder once, filtered.
_PER_ORG_LISTING = 64


@dataclass(frozen=True)
class PartitionFile:
    """A data file in the lake, located by its partition."""

    key: str
    zone: str
    dataset: str
    dt: date
    org: str
    size: int

    @classmethod
    def parse(cls, info: ObjectInfo) -> PartitionFile | None:
        match = _PART.match(info.key)
        if not match:
            return None
        return cls(
            key=info.key,
            zone=match["zone"],
            dataset=match["dataset"],
            dt=date.fromisoformat(match["dt"]),
            org=match["org"],
            size=info.size,
        )


@dataclass(frozen=True)
class LakeObject:
    """The metadata record of one written object, as the GDPR catalog stores it."""

    path: str
    zone: str
    dataset: str
    org: str
    dt: str
    subject_ids: list[str]
    rows: int
    bytes: int
    sha256: str
    created_at: str
    retention_until: str | None
    state: str = "active"
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetStats:
    zone: str
    dataset: str
    files: int
    rows: int
    bytes: int
    orgs: int
    dt_min: str
    dt_max: str


def _serialise(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


class Lake:
    """Read and write partitions; every write atomic, every write catalogued."""

    def __init__(self, storage: Storage, retention_days: int = 180) -> None:
        self.storage = storage
        self.retention_days = retention_days
        self._pending: list[dict[str, object]] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Lake:
        storage = open_storage(settings.lake_root, settings.s3_endpoint_url or None)
        return cls(storage, settings.retention_days)

    @property
    def root(self) -> str:
        return str(self.storage.root)

    # ---- layout -----------------------------------------------------------------
    @staticmethod
    def partition_prefix(
        zone: str, dataset: str, dt: date | None = None, org: str | None = None
    ) -> str:
        if zone not in ZONES:
            raise ValueError(f"zone: {zone!r} is not one of {ZONES}")
        prefix = f"{zone}/{dataset}/"
        if dt is not None:
            prefix += f"dt={dt.isoformat()}/"
            if org is not None:
                prefix += f"org={org}/"
        return prefix

    # ---- writing ----------------------------------------------------------------
    def write(
        self,
        zone: str,
        dataset: str,
        dt: date,
        org: str,
        table: pa.Table,
        subject_ids: Iterable[str] = (),
    ) -> LakeObject:
        """Write a new part file (never overwrites) and emit its metadata."""
        key = self.partition_prefix(zone, dataset, dt, org) + f"part-{uuid.uuid4().hex}.parquet"
        data = _serialise(table)
        self.storage.put(key, data, create_only=True)
        return self._emit(key, zone, dataset, dt, org, table.num_rows, data, subject_ids)

    def replace(
        self,
        key: str,
        table: pa.Table,
        subject_ids: Iterable[str] = (),
        *,
        outbox: bool = True,
    ) -> LakeObject:
        """Atomically swap the content of one file (copy-on-write rewrites use this).

        ``outbox=False`` is for a caller that updates the catalog itself and can
        recover a lost update on its own (deletion requests: their journal does).
        """
        part = self._parse_key(key)
        data = _serialise(table)
        self.storage.put(key, data)
        return self._emit(
            key, part.zone, part.dataset, part.dt, part.org, table.num_rows, data, subject_ids,
            outbox=outbox,
        )  # fmt: skip

    def delete(self, key: str, *, outbox: bool = True) -> None:
        part = self._parse_key(key)
        self.storage.delete(key)
        if outbox:
            self._outbox({"op": "delete", "path": key, "zone": part.zone, "dataset": part.dataset})

    def read_personal(self, key: str) -> pa.Table:
        """Only the columns that can hold subject ids (what verification needs)."""
        from socialsuggest.lake.personal import layout

        handle = pq.ParquetFile(io.BytesIO(self.storage.get(key)))
        columns = layout(handle.schema_arrow).columns
        return handle.read(columns=columns) if columns else handle.schema_arrow.empty_table()

    def _emit(
        self,
        key: str,
        zone: str,
        dataset: str,
        dt: date,
        org: str,
        rows: int,
        data: bytes,
        subject_ids: Iterable[str],
        *,
        outbox: bool = True,
    ) -> LakeObject:
        obj = self._object(key, zone, dataset, dt, org, rows, data, subject_ids)
        if outbox:
            self._outbox({"op": "upsert", **asdict(obj)})
        return obj

    def _object(
        self,
        key: str,
        zone: str,
        dataset: str,
        dt: date,
        org: str,
        rows: int,
        data: bytes,
        subject_ids: Iterable[str],
    ) -> LakeObject:
        retention = (
            (dt + timedelta(days=self.retention_days)).isoformat()
            if zone in PERSONAL_ZONES
            else None
        )
        return LakeObject(
            path=key,
            zone=zone,
            dataset=dataset,
            org=org,
            dt=dt.isoformat(),
            subject_ids=sorted(set(subject_ids)),
            rows=rows,
            bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            created_at=datetime.now(UTC).isoformat(),
            retention_until=retention,
        )

    def _outbox(self, record: dict[str, object]) -> None:
        if self._pending is not None:
            self._pending.append(record)
        else:
            self._write_outbox([record])

    def _write_outbox(self, records: list[dict[str, object]]) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        key = f"{OUTBOX_PREFIX}/{stamp}-{uuid.uuid4().hex[:8]}.json"
        payload = json.dumps({"records": records}, sort_keys=True).encode()
        self.storage.put(key, payload, create_only=True)

    @contextmanager
    def outbox_batch(self) -> Iterator[None]:
        """Collect the catalog records of many writes into one outbox file.

        Bulk writers (ingest, preprocessing) use this: one small file per flush instead
        of one per data file. Records are written even if the block fails, because the
        data files they describe already exist.
        """
        if self._pending is not None:  # nested: the outer batch writes
            yield
            return
        self._pending = []
        try:
            yield
        finally:
            records, self._pending = self._pending, None
            if records:
                self._write_outbox(records)

    def outbox(self) -> Iterator[dict[str, object]]:
        """Pending catalog records, oldest first."""
        for key in self.outbox_files():
            yield from self.read_outbox(key)

    def outbox_files(self) -> list[str]:
        """Keys of pending outbox files, oldest first (names start with a UTC stamp)."""
        return sorted(info.key for info in self.storage.iter_objects(OUTBOX_PREFIX + "/"))

    def read_outbox(self, key: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = json.loads(self.storage.get(key))["records"]
        return records

    def drop_outbox(self, key: str) -> None:
        """Remove an outbox file once the catalog holds its records (it lists subject ids)."""
        self.storage.delete(key)

    def describe(self, key: str) -> LakeObject:
        """Metadata of an existing file, computed from its content (reconcile uses this)."""
        from socialsuggest.lake.personal import subjects_in

        part = self._parse_key(key)
        data = self.storage.get(key)
        table = pq.read_table(io.BytesIO(data))
        return self._object(
            key, part.zone, part.dataset, part.dt, part.org, table.num_rows, data,
            subjects_in(table),
        )  # fmt: skip

    # ---- reading ----------------------------------------------------------------
    def files(
        self,
        zone: str,
        dataset: str | None = None,
        *,
        dt_from: date | None = None,
        dt_to: date | None = None,
        orgs: Iterable[str] | None = None,
    ) -> list[PartitionFile]:
        """Data files of a zone, optionally restricted to a day range and orgs."""
        wanted = set(orgs) if orgs is not None else None
        if dataset is None:
            prefixes = [self.partition_prefix(zone, "")[:-1]]
        else:
            prefixes = self._listing(zone, dataset, dt_from, dt_to, wanted)
        found = []
        for prefix in prefixes:
            for info in self.storage.iter_objects(prefix):
                part = PartitionFile.parse(info)
                if part is None:
                    continue
                if (dt_from and part.dt < dt_from) or (dt_to and part.dt > dt_to):
                    continue
                if wanted is not None and part.org not in wanted:
                    continue
                found.append(part)
        return found

    def _listing(
        self,
        zone: str,
        dataset: str,
        dt_from: date | None,
        dt_to: date | None,
        wanted: set[str] | None,
    ) -> list[str]:
        """The prefixes to list for a query: only its days' folders, and for a few orgs
        only their own folders in them.

        The lake is partitioned by day, then org, so one org's files sit in every day's
        folder among every other org's: listing the dataset for each org's training
        walked the whole zone once per org (1,000 orgs x 29 days: every org's load
        listed 29,000 folders; training 100k messages was still running, nearly all in
        system time, after 18 minutes).
        """
        root = self.partition_prefix(zone, dataset)
        if dt_from is None and dt_to is None and wanted is None:
            return [root]
        days = []
        for name in self.storage.iter_folders(root):
            if not name.startswith("dt="):
                continue  # not a partition folder: its files would not parse either
            try:
                day = date.fromisoformat(name.removeprefix("dt="))
            except ValueError:
                continue
            if (dt_from and day < dt_from) or (dt_to and day > dt_to):
                continue
            days.append(day)
        if wanted is not None and len(wanted) <= _PER_ORG_LISTING:
            return [
                self.partition_prefix(zone, dataset, d, o) for d in days for o in sorted(wanted)
            ]
        return [self.partition_prefix(zone, dataset, d) for d in days]

    def read(self, keys: Iterable[str], columns: list[str] | None = None) -> pa.Table:
        tables = [self.read_file(key, columns) for key in keys]
        if not tables:
            raise FileNotFoundError("keys: no lake files given to read")
        return pa.concat_tables(tables, promote_options="default")

    def read_file(self, key: str, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(io.BytesIO(self.storage.get(key)), columns=columns)

    def num_rows(self, key: str) -> int:
        """Row count from the Parquet footer (no data pages are read locally)."""
        if isinstance(self.storage, LocalStorage):
            return int(pq.read_metadata(self.storage.uri(key)).num_rows)
        return int(pq.ParquetFile(io.BytesIO(self.storage.get(key))).metadata.num_rows)

    def stats(self, zone: str, dataset: str | None = None) -> list[DatasetStats]:
        """Per-dataset totals of one zone, for ``lake ls`` and run summaries."""
        grouped: dict[str, list[PartitionFile]] = {}
        for part in self.files(zone, dataset):
            grouped.setdefault(part.dataset, []).append(part)
        return [
            DatasetStats(
                zone=zone,
                dataset=name,
                files=len(parts),
                rows=sum(self.num_rows(p.key) for p in parts),
                bytes=sum(p.size for p in parts),
                orgs=len({p.org for p in parts}),
                dt_min=min(p.dt for p in parts).isoformat(),
                dt_max=max(p.dt for p in parts).isoformat(),
            )
            for name, parts in sorted(grouped.items())
        ]

    def _parse_key(self, key: str) -> PartitionFile:
        part = PartitionFile.parse(ObjectInfo(key, 0))
        if part is None:
            raise ValueError(f"key: {key!r} is not a partition file of this lake")
        return part

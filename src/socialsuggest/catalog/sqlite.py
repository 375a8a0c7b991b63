"""The embedded catalog: SQLite, for the single-machine default.

Two tables: ``objects`` (one row per lake object) and ``object_subjects`` (path,
subject) with an index on subject, which is what makes "where is this person?" an
index lookup rather than a scan. WAL mode lets the serving process and a DAG task
read while another writes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from socialsuggest.catalog.base import Catalog, Query
from socialsuggest.lake import LakeObject

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    path TEXT PRIMARY KEY,
    zone TEXT NOT NULL,
    dataset TEXT NOT NULL,
    org TEXT NOT NULL,
    dt TEXT NOT NULL,
    rows INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    retention_until TEXT,
    state TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS object_subjects (
    path TEXT NOT NULL REFERENCES objects(path) ON DELETE CASCADE,
    subject_id TEXT NOT NULL,
    PRIMARY KEY (path, subject_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS object_subjects_subject ON object_subjects(subject_id);
CREATE INDEX IF NOT EXISTS objects_zone_dt ON objects(zone, dt);
CREATE INDEX IF NOT EXISTS objects_retention ON objects(retention_until);
"""
_COLUMNS = (
    "path, zone, dataset, org, dt, rows, bytes, sha256, created_at, retention_until, state, extra"
)


class SqliteCatalog(Catalog):
    kind = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=30000")
        self.ensure()

    def ensure(self) -> None:
        with self._lock:
            self._db.executescript(_SCHEMA)

    def upsert(self, objects: Sequence[LakeObject]) -> int:
        if not objects:
            return 0
        count = len(objects)
        objects = list({o.path: o for o in objects}.values())  # a path's last record wins
        rows = [
            (o.path, o.zone, o.dataset, o.org, o.dt, o.rows, o.bytes, o.sha256, o.created_at,
             o.retention_until, o.state, json.dumps(o.extra, sort_keys=True))
            for o in objects
        ]  # fmt: skip
        with self._lock, self._transaction():
            # Only the difference in subjects is written: a rewrite after a deletion
            # request changes one subject of an object that may list thousands.
            stale: list[tuple[str, str]] = []
            fresh: list[tuple[str, str]] = []
            for obj in objects:
                held = {
                    row[0]
                    for row in self._db.execute(
                        "SELECT subject_id FROM object_subjects WHERE path = ?", (obj.path,)
                    )
                }
                wanted = set(obj.subject_ids)
                stale.extend((obj.path, s) for s in held - wanted)
                fresh.extend((obj.path, s) for s in sorted(wanted - held))
            self._db.executemany(
                f"INSERT INTO objects ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(path) DO UPDATE SET zone = excluded.zone, "
                "dataset = excluded.dataset, org = excluded.org, dt = excluded.dt, "
                "rows = excluded.rows, bytes = excluded.bytes, sha256 = excluded.sha256, "
                "created_at = excluded.created_at, retention_until = excluded.retention_until, "
                "state = excluded.state, extra = excluded.extra",
                rows,
            )  # an upsert, not INSERT OR REPLACE: that would cascade-delete the subjects
            self._db.executemany(
                "DELETE FROM object_subjects WHERE path = ? AND subject_id = ?", stale
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO object_subjects (path, subject_id) VALUES (?, ?)", fresh
            )
        return count

    def remove(self, paths: Sequence[str]) -> int:
        if not paths:
            return 0
        with self._lock, self._transaction():
            self._db.executemany("DELETE FROM objects WHERE path = ?", [(p,) for p in paths])
        return len(paths)

    def get(self, path: str) -> LakeObject | None:
        found = list(self._select("o.path = ?", [path]))
        return found[0] if found else None

    def search(self, query: Query, *, subjects: bool = True) -> Iterator[LakeObject]:
        where, params = _where(query)
        return self._select(where, params, subjects=subjects)

    def count(self, query: Query | None = None) -> int:
        where, params = _where(query or Query())
        with self._lock:
            row = self._db.execute(
                f"SELECT COUNT(*) FROM objects o WHERE {where}", params
            ).fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- internals -------------------------------------------------------------------
    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def _select(
        self, where: str, params: list[Any], *, subjects: bool = True
    ) -> Iterator[LakeObject]:
        subject_list = (
            "(SELECT json_group_array(subject_id) FROM object_subjects s WHERE s.path = o.path)"
            if subjects
            else "'[]'"
        )
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join('o.' + c.strip() for c in _COLUMNS.split(','))}, "
                f"{subject_list} "
                f"FROM objects o WHERE {where} ORDER BY o.path",
                params,
            ).fetchall()
        for row in rows:
            yield LakeObject(
                path=row[0], zone=row[1], dataset=row[2], org=row[3], dt=row[4], rows=row[5],
                bytes=row[6], sha256=row[7], created_at=row[8], retention_until=row[9],
                state=row[10], extra=json.loads(row[11]), subject_ids=sorted(json.loads(row[12])),
            )  # fmt: skip


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def _where(query: Query) -> tuple[str, list[Any]]:
    clauses, params = ["1 = 1"], []
    if query.subject_id is not None:
        clauses.append("o.path IN (SELECT path FROM object_subjects WHERE subject_id = ?)")
        params.append(query.subject_id)
    if query.zones is not None:
        clauses.append(f"o.zone IN ({', '.join('?' * len(query.zones))})")
        params.extend(query.zones)
    if query.orgs is not None:
        clauses.append(f"o.org IN ({', '.join('?' * len(query.orgs))})")
        params.extend(query.orgs)
    if query.dt_before is not None:
        clauses.append("o.dt < ?")
        params.append(query.dt_before.isoformat())
    if query.retention_before is not None:
        clauses.append("o.retention_until IS NOT NULL AND o.retention_until < ?")
        params.append(query.retention_before.isoformat())
    return " AND ".join(clauses), params

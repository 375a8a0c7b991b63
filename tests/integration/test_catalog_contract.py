"""The catalog contract: one suite, run against every backend (SQLite and Elasticsearch).

A deletion request trusts the catalog to name every file that holds a person, so
each backend must give exactly :meth:`Query.matches`' answer, all of it (not one
page), and see its own writes at once. The outbox sync and the reconcile are run
on a real lake, because they are what keeps the catalog equal to the files.
"""

from __future__ import annotations

import random
import socket
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from socialsuggest.catalog import (
    Catalog,
    CatalogUnavailableError,
    Query,
    open_catalog,
    reconcile,
    sync_outbox,
)
from socialsuggest.config import load_settings
from socialsuggest.lake import Lake, LakeObject
from socialsuggest.lake.personal import subjects_in
from socialsuggest.lake.storage import LocalStorage

ZONES = ("raw", "processed", "quarantine", "logs", "audit")
ORGS = ("org-a", "org-b", "org-c", "org-d", "_unknown")
SUBJECTS = [f"au-{i:03d}" for i in range(40)]
DAY0 = date(2026, 3, 1)


def lake_object(
    path: str,
    subject_ids: list[str],
    *,
    zone: str = "raw",
    org: str = "org-a",
    dt: date = DAY0,
    extra: dict[str, str] | None = None,
) -> LakeObject:
    return LakeObject(
        path=path,
        zone=zone,
        dataset="messages",
        org=org,
        dt=dt.isoformat(),
        subject_ids=subject_ids,
        rows=len(subject_ids) * 10,
        bytes=1000 + len(path),
        sha256=f"{abs(hash(path)):064x}"[:64],
        created_at=datetime(2026, 3, 2, 8, 30, 15, 123456, tzinfo=UTC).isoformat(),
        retention_until=None if zone == "audit" else (dt + timedelta(days=180)).isoformat(),
        extra=extra or {},
    )


def generated(count: int, seed: int = 5) -> list[LakeObject]:
    """Objects over zones, orgs and 60 days, each with 0-5 random subjects."""
    rng = random.Random(seed)
    objects = []
    for i in range(count):
        zone, org = rng.choice(ZONES), rng.choice(ORGS)
        dt = DAY0 + timedelta(days=rng.randrange(60))
        subjects = sorted(rng.sample(SUBJECTS, rng.randrange(6)))
        path = f"{zone}/messages/dt={dt}/org={org}/part-{i:05d}.parquet"
        objects.append(lake_object(path, subjects, zone=zone, org=org, dt=dt))
    return objects


def paths(objects: Any) -> list[str]:
    return sorted(o.path for o in objects)


# ---- schema ----------------------------------------------------------------------------
def test_ensure_is_idempotent_and_a_reopen_sees_the_data(
    catalog: Catalog, catalog_settings: dict[str, Any], tmp_path: Path
) -> None:
    catalog.ensure()
    catalog.ensure()
    obj = lake_object("raw/messages/dt=2026-03-01/org=org-a/part-1.parquet", ["au-001"])
    catalog.upsert([obj])
    catalog.ensure()  # must not drop or remap what is there
    with open_catalog(load_settings(home=tmp_path, **catalog_settings)) as again:
        assert again.kind == catalog.kind
        assert again.get(obj.path) == obj
        assert again.count() == 1


# ---- writes ----------------------------------------------------------------------------
def test_upsert_then_get_round_trips_every_field(catalog: Catalog) -> None:
    long_path = "raw/messages/dt=2026-03-01/org=org-a/" + "x" * 700 + ".parquet"  # > _id limit
    objects = [
        lake_object(long_path, ["au-001", "au-002"], extra={"writer": "ingest", "note": "é ✓"}),
        lake_object("audit/requests/dt=2026-03-01/org=org-a/p.parquet", [], zone="audit"),
        LakeObject(
            path="processed/messages/dt=2026-03-04/org=org-b/p.parquet",
            zone="processed",
            dataset="messages",
            org="org-b",
            dt="2026-03-04",
            subject_ids=["ag-7", "au-003"],
            rows=12_345_678_901,  # beyond 32 bits
            bytes=9_876_543_210,
            sha256="ab" * 32,
            created_at="2026-03-04T23:59:59.999999+00:00",
            retention_until="2026-08-31",
            state="erasing",
            extra={},
        ),
    ]
    assert catalog.upsert(objects) == 3
    for obj in objects:
        assert catalog.get(obj.path) == obj
    assert catalog.get(objects[0].path + ".missing") is None
    assert paths(catalog.iter_all()) == paths(objects)
    assert catalog.upsert([]) == 0


def test_subject_ids_come_back_sorted_and_distinct(catalog: Catalog) -> None:
    obj = lake_object("raw/m/dt=2026-03-01/org=o/p.parquet", ["au-9", "au-1", "au-9", "au-5"])
    catalog.upsert([obj])
    found = catalog.get(obj.path)
    assert found is not None and found.subject_ids == ["au-1", "au-5", "au-9"]


def test_upsert_of_a_known_path_replaces_the_document(catalog: Catalog) -> None:
    path = "raw/messages/dt=2026-03-01/org=org-a/part-1.parquet"
    other = lake_object("raw/messages/dt=2026-03-01/org=org-a/part-2.parquet", ["au-002"])
    catalog.upsert([lake_object(path, ["au-001", "au-002", "au-003"]), other])
    smaller = lake_object(path, ["au-001"], extra={"rewritten_by": "erasure"})
    catalog.upsert([smaller])
    assert catalog.count() == 2
    assert catalog.get(path) == smaller
    assert paths(catalog.search(Query(subject_id="au-002"))) == [other.path]
    assert catalog.count(Query(subject_id="au-003")) == 0
    assert paths(catalog.search(Query(subject_id="au-001"))) == [path]


def test_the_last_record_of_a_path_in_one_batch_wins(catalog: Catalog) -> None:
    path = "raw/messages/dt=2026-03-01/org=org-a/part-1.parquet"
    last = lake_object(path, ["au-001"])
    catalog.upsert([lake_object(path, ["au-001", "au-002"]), last])
    assert catalog.get(path) == last
    assert catalog.count(Query(subject_id="au-002")) == 0


def test_remove_deletes_by_path_and_ignores_missing_ones(catalog: Catalog) -> None:
    objects = generated(20)
    catalog.upsert(objects)
    gone = [objects[0].path, objects[5].path]
    assert catalog.remove([*gone, "raw/never/dt=2026-01-01/org=x/p.parquet"]) == 3
    assert catalog.count() == 18
    assert all(catalog.get(p) is None for p in gone)
    assert paths(catalog.iter_all()) == paths(objects[1:5] + objects[6:])
    assert catalog.remove(gone) == 2  # again: nothing there, no error
    assert catalog.remove(["raw/only/dt=2026-01-01/org=x/missing.parquet"]) == 1
    assert catalog.remove([]) == 0
    assert catalog.count() == 18


# ---- reads -----------------------------------------------------------------------------
def reference_queries() -> list[Query]:
    day = DAY0 + timedelta(days=30)
    retention = DAY0 + timedelta(days=200)
    queries = [Query(), Query(zones=()), Query(orgs=("nobody",)), Query(subject_id="au-999")]
    queries += [Query(subject_id=s) for s in SUBJECTS[:12]]
    queries += [Query(zones=(z,)) for z in ZONES] + [Query(zones=("raw", "logs"))]
    queries += [Query(orgs=(o,)) for o in ORGS] + [Query(orgs=("org-a", "_unknown"))]
    queries += [Query(dt_before=DAY0), Query(dt_before=day), Query(dt_before=date(2027, 1, 1))]
    queries += [Query(retention_before=retention), Query(retention_before=date(2030, 1, 1))]
    queries += [
        Query(subject_id="au-003", zones=("raw", "processed", "quarantine", "logs")),
        Query(subject_id="au-004", orgs=("org-a", "org-b"), dt_before=day),
        Query(zones=("logs",), retention_before=retention, orgs=("org-c",)),
        Query(subject_id="au-007", zones=("audit",)),
        Query(subject_id="au-008", zones=("raw",), orgs=("org-d",), dt_before=day,
              retention_before=retention),
    ]  # fmt: skip
    return queries


def test_search_and_count_agree_with_the_reference_semantics(catalog: Catalog) -> None:
    objects = generated(400, seed=11)
    catalog.upsert(objects)
    for query in reference_queries():
        expected = paths(o for o in objects if query.matches(o))
        found = list(catalog.search(query))
        assert paths(found) == expected, query
        assert len(found) == len(expected), query  # no duplicates
        assert catalog.count(query) == len(expected), query
    assert sum(1 for q in reference_queries() if any(q.matches(o) for o in objects)) > 20
    assert catalog.count() == 400


def test_search_returns_every_match_beyond_one_page(catalog: Catalog) -> None:
    total = 12_000  # above Elasticsearch's 10,000-hit window
    many = [
        lake_object(f"raw/messages/dt=2026-03-01/org=org-a/part-{i:05d}.parquet",
                    ["au-big", f"au-{i % 7}"])
        for i in range(total)
    ]  # fmt: skip
    started = time.monotonic()
    assert catalog.upsert(many) == total
    indexed = time.monotonic() - started
    found = list(catalog.search(Query(subject_id="au-big")))
    assert len(found) == total
    assert len({o.path for o in found}) == total
    assert catalog.count(Query(subject_id="au-big")) == total
    assert catalog.count(Query(subject_id="au-3")) == len(range(3, total, 7))
    assert indexed < 60, f"bulk indexing {total} documents took {indexed:.1f} s"


def test_find_subject_is_sorted_by_path_and_filters_zones(catalog: Catalog) -> None:
    objects = generated(300, seed=3)
    catalog.upsert(list(reversed(objects)))
    subject = "au-010"
    holding = [o for o in objects if subject in o.subject_ids]
    assert holding
    found = catalog.find_subject(subject)
    assert [o.path for o in found] == sorted(o.path for o in holding)
    assert found == sorted(holding, key=lambda o: o.path)  # whole documents, not just paths
    personal = catalog.find_subject(subject, zones=["raw", "logs"])
    assert [o.path for o in personal] == sorted(
        o.path for o in holding if o.zone in ("raw", "logs")
    )
    assert catalog.find_subject("au-nobody") == []
    located = catalog.locate(subject, zones=["raw", "logs"])  # metadata only, no subject lists
    assert [o.path for o in located] == [o.path for o in personal]
    assert all(o.subject_ids == [] for o in located)
    assert [(o.sha256, o.rows) for o in located] == [(o.sha256, o.rows) for o in personal]


# ---- sync from a real lake -------------------------------------------------------------
def messages(authors: list[str], first_id: int = 0) -> pa.Table:
    return pa.table(
        {
            "message_id": [f"m-{first_id + i}" for i in range(len(authors))],
            "author_id": authors,
            "text": [f"message {first_id + i} from {a}" for i, a in enumerate(authors)],
        }
    )


def write(lake: Lake, table: pa.Table, dt: date = DAY0, org: str = "org-a") -> LakeObject:
    return lake.write("raw", "messages", dt, org, table, subject_ids=subjects_in(table))


def drop_outbox(lake: Lake) -> None:
    for key in lake.outbox_files():
        lake.drop_outbox(key)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(LocalStorage(tmp_path / "lake"))


def test_sync_outbox_indexes_writes_and_deletes_and_is_idempotent(
    catalog: Catalog, lake: Lake
) -> None:
    first = write(lake, messages(["au-1", "au-2", "au-1"]))
    with lake.outbox_batch():  # one outbox file for several writes
        second = write(lake, messages(["au-2", "au-3"], 10), org="org-b")
        doomed = write(lake, messages(["au-4"], 20), dt=DAY0 + timedelta(days=1))
    lake.delete(doomed.path)
    rewritten = lake.replace(first.path, messages(["au-1"], 30), subject_ids=["au-1"])
    assert len(lake.outbox_files()) == 4

    report = sync_outbox(lake, catalog)
    assert report.outbox_files == 4
    assert report.removed == 1
    assert lake.outbox_files() == []  # they list subject ids: gone once indexed
    assert paths(catalog.iter_all()) == sorted([first.path, second.path])
    assert catalog.get(first.path) == rewritten  # the later record of the path won
    assert catalog.get(second.path) == second
    assert catalog.get(doomed.path) is None
    assert [o.path for o in catalog.find_subject("au-2")] == [second.path]
    assert catalog.find_subject("au-4") == []

    again = sync_outbox(lake, catalog)
    assert again.summary() == {"outbox_files": 0, "upserted": 0, "removed": 0}
    assert catalog.count() == 2

    lake.delete(second.path)  # a delete alone, in its own outbox file
    assert sync_outbox(lake, catalog).removed == 1
    assert paths(catalog.iter_all()) == [first.path]


def test_sync_outbox_reapplies_a_file_left_behind_by_a_crash(catalog: Catalog, lake: Lake) -> None:
    obj = write(lake, messages(["au-1"]))
    key = lake.outbox_files()[0]
    records = lake.read_outbox(key)
    sync_outbox(lake, catalog)
    lake._write_outbox(records)  # as if the drop had not happened before a crash
    assert sync_outbox(lake, catalog).upserted == 1
    assert catalog.count() == 1 and catalog.get(obj.path) == obj


def test_reconcile_repairs_missing_stale_and_changed_documents(
    catalog: Catalog, lake: Lake
) -> None:
    kept = write(lake, messages(["au-1", "au-2"]))
    changed = write(lake, messages(["au-3"], 10), org="org-b")
    sync_outbox(lake, catalog)

    missing = write(lake, messages(["au-5", "au-6"], 20), dt=DAY0 + timedelta(days=2))
    lake.replace(changed.path, messages(["au-3", "au-7", "au-8"], 30), subject_ids=[])
    drop_outbox(lake)  # both records lost: only a reconcile can see these two
    stale = lake_object("raw/messages/dt=2026-02-01/org=org-a/part-gone.parquet", ["au-9"])
    audit = lake_object("audit/requests/dt=2026-02-01/org=org-a/a.parquet", ["au-9"], zone="audit")
    catalog.upsert([stale, audit])

    dry = reconcile(lake, catalog, repair=False)
    assert (dry.missing, dry.stale, dry.changed) == ([missing.path], [stale.path], [changed.path])
    assert catalog.get(stale.path) is not None  # a dry run repairs nothing

    report = reconcile(lake, catalog)
    assert report.missing == [missing.path]
    assert report.stale == [stale.path]
    assert report.changed == [changed.path]
    assert report.summary() == {
        "lake_objects": 3,
        "catalog_docs": 3,
        "missing_indexed": 1,
        "stale_removed": 1,
        "changed_reindexed": 1,
    }
    assert catalog.get(stale.path) is None
    assert catalog.get(audit.path) == audit  # not a personal zone: reconcile leaves it
    for key in (kept.path, missing.path, changed.path):
        doc, truth = catalog.get(key), lake.describe(key)
        assert doc is not None
        assert (doc.subject_ids, doc.rows, doc.bytes, doc.sha256, doc.retention_until) == (
            truth.subject_ids, truth.rows, truth.bytes, truth.sha256, truth.retention_until
        )  # fmt: skip
    assert [o.path for o in catalog.find_subject("au-7")] == [changed.path]
    assert [o.path for o in catalog.find_subject("au-5")] == [missing.path]
    assert catalog.find_subject("au-9") == [audit]

    assert reconcile(lake, catalog).in_sync
    assert reconcile(lake, catalog, repair=False).in_sync


# ---- Elasticsearch specifics -----------------------------------------------------------
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_elasticsearch_raises_a_clear_error_after_backing_off() -> None:
    from socialsuggest.catalog.elastic import ElasticCatalog

    address = f"127.0.0.1:{closed_port()}"
    started = time.monotonic()
    with pytest.raises(CatalogUnavailableError) as caught:
        ElasticCatalog(
            f"http://catalog:s3cret@{address}",
            timeout=2,
            max_retries=1,
            startup_wait=1.5,
            backoff=0.1,
        )
    waited = time.monotonic() - started
    assert 1.4 <= waited < 15, waited
    message = str(caught.value)
    assert f"http://catalog:***@{address}" in message  # the URL, its password masked
    assert "s3cret" not in message and "attempts" in message


# Elasticsearch only: it refuses a document whose dt is not a date (SQLite stores dt as
# text, so it has nothing to refuse and no error to check).
@pytest.mark.services
@pytest.mark.parametrize("catalog_settings", ["elasticsearch"], indirect=True)
def test_elasticsearch_write_errors_name_paths_not_subjects(
    catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    assert catalog.kind == "elasticsearch"
    from socialsuggest.catalog.elastic import CatalogWriteError

    bad = replace(lake_object("raw/m/dt=x/org=o/p.parquet", ["au-secret"]), dt="not-a-day")
    with pytest.raises(CatalogWriteError) as caught:
        catalog.upsert([bad])
    message = str(caught.value)
    assert bad.path in message and "parsing_exception" in message
    assert "au-secret" not in message
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert "au-secret" not in caplog.text

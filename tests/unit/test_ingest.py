from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from socialsuggest.ingest import Ingestor, ingest_events, ingest_paths
from socialsuggest.lake import Lake
from socialsuggest.sampledata import Manifest


def _message(i: int, **overrides: Any) -> dict[str, Any]:
    record = {
        "event_type": "message",
        "message_id": f"m{i}",
        "org_id": "acme",
        "network": "twitter",
        "message_type": "mention",
        "author_id": f"au-{i % 5}",
        "text": f"message number {i}",
        "created_at": f"2026-02-{1 + i % 3:02d}T12:00:00Z",
        "tags": [{"tag": "billing", "applied_by": "ag-1"}],
    }
    record.update(overrides)
    return record


def test_counts_reconcile_and_every_corrupted_record_is_quarantined(
    lake: Lake, small_sample: tuple[Path, Manifest]
) -> None:
    sample, manifest = small_sample
    report = ingest_paths(lake, [sample])
    total = sum(manifest.counts.values())
    assert report.records_in == total
    assert report.records_in == report.written_total + report.quarantined_total + report.duplicates
    assert report.quarantined_total == manifest.invalid_injected > 0
    assert report.duplicates == 0
    raw_rows = sum(lake.num_rows(p.key) for p in lake.files("raw"))
    assert raw_rows == report.written_total
    assert report.orgs == {o["org"] for o in manifest.orgs}


def test_quarantine_keeps_record_reason_and_location(
    lake: Lake, small_sample: tuple[Path, Manifest]
) -> None:
    sample, _ = small_sample
    ingest_paths(lake, [sample])
    files = lake.files("quarantine")
    rows = lake.read([f.key for f in files]).to_pylist()
    assert rows
    for row in rows:
        assert row["reason"] and row["record"]
        path, _, line = row["source"].rpartition(":")
        assert Path(path).is_file() and int(line) >= 1
        original = Path(path).read_text().splitlines()[int(line) - 1]
        if row["errors"][0]["field"] == "record":  # undecodable: kept verbatim
            assert row["record"] == original
        else:
            assert json.loads(row["record"]) == json.loads(original)
    reasons = Counter(e["field"] for row in rows for e in row["errors"])
    # the generator's corruptions each surface as a reason naming the field
    assert set(reasons) >= {"text", "network", "created_at", "org_id", "tags.0.tag", "record"}
    # a bad record still carries personal data: its subject ids are kept for erasure
    assert any(row["subject_ids"] for row in rows)


def test_reingest_adds_nothing(lake: Lake, small_sample: tuple[Path, Manifest]) -> None:
    sample, _ = small_sample
    first = ingest_paths(lake, [sample])
    files_before = {p.key for p in lake.files("raw")} | {p.key for p in lake.files("quarantine")}
    second = ingest_paths(lake, [sample])
    assert second.records_in == first.records_in
    assert second.written_total == 0 and second.quarantined_total == 0
    assert second.duplicates == second.records_in
    files_after = {p.key for p in lake.files("raw")} | {p.key for p in lake.files("quarantine")}
    assert files_after == files_before


def test_duplicates_are_caught_across_flushes_and_files(lake: Lake, tmp_path: Path) -> None:
    records = [_message(i) for i in range(50)]
    ingestor = Ingestor(lake, flush_rows=7)  # forces many flushes mid-stream
    ingestor.ingest_records((f"a:{i}", r) for i, r in enumerate(records))
    ingestor.ingest_records((f"b:{i}", r) for i, r in enumerate(records))
    report = ingestor.finish()
    assert report.written_total == 50 and report.duplicates == 50
    table = lake.read([p.key for p in lake.files("raw", "messages")])
    assert sorted(table["message_id"].to_pylist()) == sorted(f"m{i}" for i in range(50))


def test_same_key_with_different_content_is_quarantined_as_conflict(lake: Lake) -> None:
    ingest_events(lake, [_message(1)])
    report = ingest_events(lake, [_message(1, text="edited text")])
    assert report.written_total == 0 and report.quarantined_total == 1
    row = lake.read([p.key for p in lake.files("quarantine")]).to_pylist()[0]
    assert "conflicts" in row["reason"] and "message|acme|m1" in row["reason"]
    assert lake.read([p.key for p in lake.files("raw")])["text"].to_pylist() == ["message number 1"]


def test_csv_and_parquet_sources(lake: Lake, tmp_path: Path) -> None:
    csv_path = tmp_path / "messages.csv"
    fields = list(_message(0))
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for i in range(5):
            row = _message(i)
            row["tags"] = json.dumps(row["tags"])
            writer.writerow(row)
        writer.writerow({**_message(99), "network": "fax", "tags": "[]"})
    parquet_path = tmp_path / "more.parquet"
    pq.write_table(pa.Table.from_pylist([_message(i) for i in range(5, 9)]), parquet_path)
    report = ingest_paths(lake, [csv_path, parquet_path])
    assert report.written["messages"] == 9 and report.quarantined_total == 1
    bad = lake.read([p.key for p in lake.files("quarantine")]).to_pylist()[0]
    assert bad["source"] == f"{csv_path}:7" and bad["reason"].startswith("network:")


def test_every_written_object_is_catalogued_with_its_subjects(lake: Lake) -> None:
    report = ingest_events(lake, [_message(i) for i in range(12)])
    outbox = {r["path"]: r for r in lake.outbox()}
    assert {o.path for o in report.objects} == set(outbox)
    for obj in report.objects:
        table = lake.read([obj.path])
        authors = set(table["author_id"].to_pylist())
        appliers = {t["applied_by"] for tags in table["tags"].to_pylist() for t in tags}
        assert set(outbox[obj.path]["subject_ids"]) == authors | appliers
        assert outbox[obj.path]["rows"] == table.num_rows


def test_undecodable_lines_and_unknown_types_are_kept(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        json.dumps(_message(1)) + "\n" + '{"event_type": "message", "org_' + "\n"
        + json.dumps({"event_type": "fax"}) + "\n" + "[1, 2]\n\n"
    )  # fmt: skip
    report = ingest_paths(lake, [path])
    assert report.records_in == 4 and report.written_total == 1 and report.quarantined_total == 3
    reasons = sorted(lake.read([p.key for p in lake.files("quarantine")])["reason"].to_pylist())
    assert any("not valid JSON" in r for r in reasons)
    assert any("unknown type 'fax'" in r for r in reasons)
    assert any("not a JSON object" in r for r in reasons)


def test_raw_rows_carry_lineage(lake: Lake) -> None:
    ingest_events(lake, [_message(3)], source="crm-export")
    row = lake.read([p.key for p in lake.files("raw")]).to_pylist()[0]
    assert row["_key"] == "message|acme|m3" and row["_source"] == "crm-export:1"
    assert row["tags"][0]["tag"] == "billing" and row["created_at"].tzinfo is not None

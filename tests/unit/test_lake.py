from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from socialsuggest.lake import Lake, LocalStorage, ObjectExistsError
from socialsuggest.lake.storage import ObjectInfo


def _table(n: int, start: int = 0) -> pa.Table:
    return pa.table(
        {"id": list(range(start, start + n)), "author_id": [f"au-{i % 3}" for i in range(n)]}
    )


def test_write_lands_in_its_partition_and_reads_back(lake: Lake) -> None:
    obj = lake.write("raw", "messages", date(2026, 1, 2), "acme", _table(5), {"au-0", "au-1"})
    assert obj.path.startswith("raw/messages/dt=2026-01-02/org=acme/part-")
    assert obj.path.endswith(".parquet")
    assert lake.read([obj.path])["id"].to_pylist() == [0, 1, 2, 3, 4]
    assert lake.num_rows(obj.path) == 5


def test_listing_filters_by_day_range_and_org(lake: Lake) -> None:
    for day in (1, 2, 3):
        for org in ("acme", "globex"):
            lake.write("raw", "messages", date(2026, 1, day), org, _table(1))
    lake.write("raw", "posts", date(2026, 1, 2), "acme", _table(1))
    assert len(lake.files("raw", "messages")) == 6
    assert len(lake.files("raw")) == 7
    picked = lake.files(
        "raw", "messages", dt_from=date(2026, 1, 2), dt_to=date(2026, 1, 3), orgs=["acme"]
    )
    assert sorted((p.dt.day, p.org) for p in picked) == [(2, "acme"), (3, "acme")]
    assert [
        p.org
        for p in lake.files(
            "raw", "messages", dt_from=date(2026, 1, 1), dt_to=date(2026, 1, 1), orgs=["globex"]
        )
    ] == ["globex"]


class _ListingSpy(LocalStorage):
    """The real local store, recording which prefixes a query lists."""

    def __init__(self, root: Path) -> None:
        super().__init__(str(root))
        self.listed: list[str] = []

    def iter_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self.listed.append(prefix)
        return super().iter_objects(prefix)


def test_an_orgs_listing_reads_only_its_own_folders_of_the_days_asked(tmp_path: Path) -> None:
    """The lake is partitioned by day, then org: listing a whole dataset per org made
    every org's training walk every org's files (minutes of system time at 1,000 orgs)."""
    storage = _ListingSpy(tmp_path / "lake")
    lake = Lake(storage)
    orgs = [f"org{i:02d}" for i in range(70)]
    for day in (1, 2, 3):
        for org in orgs:
            lake.write("processed", "tags", date(2026, 1, day), org, _table(1))
    everything = lake.files("processed", "tags")
    assert storage.listed == ["processed/tags/"] and len(everything) == 210

    storage.listed.clear()
    mine = lake.files("processed", "tags", orgs=["org07"])
    assert mine == [p for p in everything if p.org == "org07"]
    assert storage.listed == [f"processed/tags/dt=2026-01-0{d}/org=org07/" for d in (1, 2, 3)]

    storage.listed.clear()
    late = lake.files("processed", "tags", dt_from=date(2026, 1, 2), orgs=["org07", "org09"])
    assert sorted((p.dt.day, p.org) for p in late) == [
        (2, "org07"), (2, "org09"), (3, "org07"), (3, "org09")
    ]  # fmt: skip
    assert all("dt=2026-01-01" not in prefix for prefix in storage.listed)

    storage.listed.clear()  # many orgs: each day's folder once, filtered
    many = lake.files("processed", "tags", dt_to=date(2026, 1, 2), orgs=orgs[:65])
    assert len(many) == 2 * 65
    assert storage.listed == ["processed/tags/dt=2026-01-01/", "processed/tags/dt=2026-01-02/"]
    assert lake.files("processed", "tags", orgs=["nobody"]) == []
    assert lake.files("processed", "nothing-here", orgs=["org07"]) == []


def test_each_write_emits_a_catalog_record_matching_the_bytes(lake: Lake) -> None:
    obj = lake.write("raw", "messages", date(2026, 1, 2), "acme", _table(4), {"au-1", "au-0"})
    record = next(r for r in lake.outbox() if r["path"] == obj.path)
    data = Path(lake.storage.uri(obj.path)).read_bytes()
    assert record["op"] == "upsert"
    assert record["sha256"] == hashlib.sha256(data).hexdigest()
    assert record["bytes"] == len(data)
    assert record["rows"] == 4
    assert record["subject_ids"] == ["au-0", "au-1"]
    assert (record["org"], record["dt"], record["dataset"]) == ("acme", "2026-01-02", "messages")
    assert record["retention_until"] == "2026-07-01"  # 180 days after dt


def test_replace_swaps_content_and_reissues_metadata(lake: Lake) -> None:
    obj = lake.write("raw", "messages", date(2026, 1, 2), "acme", _table(4))
    new = lake.replace(obj.path, _table(2, start=10), {"au-0"})
    assert new.path == obj.path and new.rows == 2 and new.sha256 != obj.sha256
    assert lake.read([obj.path])["id"].to_pylist() == [10, 11]
    assert [r["rows"] for r in lake.outbox() if r["path"] == obj.path] == [4, 2]
    lake.delete(obj.path)
    assert lake.files("raw") == []
    assert list(lake.outbox())[-1] == {
        "op": "delete",
        "path": obj.path,
        "zone": "raw",
        "dataset": "messages",
    }


def test_create_only_never_overwrites(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("a/b.bin", b"first", create_only=True)
    with pytest.raises(ObjectExistsError):
        storage.put("a/b.bin", b"second", create_only=True)
    assert storage.get("a/b.bin") == b"first"
    assert storage.stale_temporaries() == []  # the refused write cleaned up after itself


def test_keys_cannot_escape_the_root(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="key"):
        LocalStorage(tmp_path).put("../outside.bin", b"x")
    with pytest.raises(ValueError, match="zone"):
        Lake.partition_prefix("scratch", "messages")


def test_bad_lake_root_scheme_is_refused() -> None:
    from socialsuggest.lake import open_storage

    with pytest.raises(ValueError, match="lake_root: unsupported scheme"):
        open_storage("gs://bucket/x")


_WRITER = textwrap.dedent(
    """
    import sys, itertools
    from datetime import date
    import pyarrow as pa
    from socialsuggest.lake import Lake, LocalStorage
    lake = Lake(LocalStorage(sys.argv[1]))
    rows = int(sys.argv[2])
    table = pa.table({"id": list(range(rows)), "text": ["x" * 50] * rows})
    for i in itertools.count():
        lake.write("raw", "messages", date(2026, 1, 1 + i % 28), "acme", table)
        print(i, flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.05, 0.3, 0.9])
def test_a_writer_killed_mid_write_leaves_no_partial_file_visible(
    tmp_path: Path, delay: float
) -> None:
    """SIGKILL a real writer process at an arbitrary moment; every visible file is whole."""
    rows = 300_000  # a few MB per file, so the kill usually lands inside a write
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path), str(rows)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # at least one complete write happened
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lake = Lake(LocalStorage(tmp_path))
    visible = lake.files("raw", "messages")
    assert visible, "the first completed write must be visible"
    for part in visible:
        assert pq.read_metadata(lake.storage.uri(part.key)).num_rows == rows
    # whatever the kill interrupted is an invisible temporary, never a listed file
    for leftover in LocalStorage(tmp_path).stale_temporaries():
        assert leftover.name.startswith(".tmp-")


_DIES_BEFORE_RENAME = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import date
    import pyarrow as pa
    from socialsuggest.lake import Lake, LocalStorage
    lake = Lake(LocalStorage(sys.argv[1]))
    table = pa.table({"id": list(range(1000))})
    lake.write("raw", "messages", date(2026, 1, 1), "acme", table)
    # Crash at the worst moment: all bytes written and fsynced, not yet published.
    os.link = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
    lake.write("raw", "messages", date(2026, 1, 2), "acme", table)
    """
)


def test_a_crash_between_write_and_publish_leaves_only_an_invisible_temporary(
    tmp_path: Path,
) -> None:
    proc = subprocess.run([sys.executable, "-c", _DIES_BEFORE_RENAME, str(tmp_path)], check=False)
    assert proc.returncode == -signal.SIGKILL
    storage = LocalStorage(tmp_path)
    leftovers = storage.stale_temporaries()
    assert len(leftovers) == 1 and leftovers[0].parent.name == "org=acme"
    assert leftovers[0].stat().st_size > 0  # the crashed write had real bytes on disk
    assert [p.dt.day for p in Lake(storage).files("raw", "messages")] == [1]


def test_local_listing_is_ordered_and_shows_no_temporaries_or_linked_folders(
    tmp_path: Path,
) -> None:
    """What every job's listing rests on: a folder's files by name, then its subfolders
    by name; nothing hidden (a writer's temporaries), no folder reached through a link."""
    storage = LocalStorage(tmp_path / "root")
    for key in ("a/z.parquet", "a/b/y.parquet", "a/b/x.parquet", "a/c/w.parquet", "a/m.parquet"):
        storage.put(key, b"12345")
    (tmp_path / "root" / "a" / ".tmp-123-z.parquet").write_bytes(b"partial")
    (tmp_path / "root" / "a" / ".hidden").mkdir()
    (tmp_path / "root" / "a" / ".hidden" / "v.parquet").write_bytes(b"x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "u.parquet").write_bytes(b"x")
    (tmp_path / "root" / "a" / "link").symlink_to(outside, target_is_directory=True)

    listed = list(storage.iter_objects("a"))

    assert [o.key for o in listed] == [
        "a/m.parquet", "a/z.parquet", "a/b/x.parquet", "a/b/y.parquet", "a/c/w.parquet",
    ]  # fmt: skip
    assert {o.size for o in listed} == {5}
    assert [o.key for o in storage.iter_objects("a/m.parquet")] == ["a/m.parquet"]
    assert list(storage.iter_objects("missing")) == []
    assert [o.key for o in storage.iter_objects()] == [o.key for o in listed]

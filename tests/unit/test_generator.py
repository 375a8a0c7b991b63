from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import pytest

from socialsuggest.events import EventValidationError, parse_event
from socialsuggest.sampledata import Manifest, generate


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.jsonl"))
    }


def _records(folder: Path, kind: str) -> list[dict]:
    out = []
    for path in sorted((folder / kind).glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def _valid(record: dict) -> bool:
    try:
        parse_event(record)
    except EventValidationError:  # one of the deliberately corrupted records
        return False
    return True


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path, datasets_dir: Path) -> None:
    args = {
        "datasets_dir": datasets_dir,
        "orgs": 3,
        "messages": 900,
        "days": 5,
        "end": date(2026, 1, 10),
    }
    generate(tmp_path / "a", seed=1, **args)
    generate(tmp_path / "b", seed=1, **args)
    generate(tmp_path / "c", seed=2, **args)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_orgs_vocabularies_and_lifecycles_are_realistic(
    small_sample: tuple[Path, Manifest],
) -> None:
    folder, manifest = small_sample
    assert len(manifest.orgs) == 4
    assert sum(o["messages"] for o in manifest.orgs) == 3000
    assert all(10 <= o["vocabulary"] <= 200 for o in manifest.orgs)
    assert len({o["corpus"] for o in manifest.orgs}) == 4  # each org its own community
    lifecycle: dict[tuple[str, str], dict[str, datetime]] = {}
    for line in (folder / "tag_events.jsonl").read_text().splitlines():
        event = json.loads(line)
        lifecycle.setdefault((event["org_id"], event["tag"]), {})[event["action"]] = (
            datetime.fromisoformat(event["at"])
        )
    messages = [m for m in _records(folder, "messages") if _valid(m)]
    assert any(ev.get("archived") for ev in lifecycle.values())
    start = datetime.fromisoformat(manifest.start + "T00:00:00+00:00")
    assert any(ev["created"] > start for ev in lifecycle.values())  # new tags appear
    for m in messages:
        at = datetime.fromisoformat(m["created_at"])
        for applied in m["tags"]:
            life = lifecycle[(m["org_id"], applied["tag"])]
            assert life["created"] <= at, "a tag is never applied before it exists"
            assert "archived" not in life or at < life["archived"], "nor after it is archived"
    assert len({m["network"] for m in messages}) >= 3
    assert len({m["message_type"] for m in messages}) >= 4
    usage = Counter(t["tag"] for m in messages for t in m["tags"])
    top, median = usage.most_common(1)[0][1], sorted(usage.values())[len(usage) // 2]
    assert top > 5 * median  # Zipf-like: a few tags carry most of the usage
    authors = {m["author_id"] for m in messages}
    assert all(re.fullmatch(r"(au|tw)-[0-9a-f]+", a) for a in authors)  # pseudonyms, no names
    assert _records(folder, "posts") and all("hashtags" in p for p in _records(folder, "posts"))
    assert _records(folder, "reply_choices")


_PEAK = """
import resource, sys
from pathlib import Path
from datetime import date
from socialsuggest.sampledata import generate
generate(Path(sys.argv[1]), datasets_dir=Path(sys.argv[2]), orgs=20, messages=int(sys.argv[3]),
         days=10, end=date(2026, 1, 1), seed=3)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.mark.slow
def test_memory_does_not_grow_with_message_count(tmp_path: Path, datasets_dir: Path) -> None:
    peaks = {}
    # 60k, not 150k (half the time): 50k more messages are ~27 MB of JSON, several times
    # that as Python objects if they were held; measured peaks 105.3 MB (10k), 105.6 (60k)
    for n in (10_000, 60_000):
        out = subprocess.run(
            [sys.executable, "-c", _PEAK, str(tmp_path / str(n)), str(datasets_dir), str(n)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        peaks[n] = int(out.stdout.strip()) / 1024  # MiB
    assert sum(1 for _ in (tmp_path / "60000" / "messages").glob("*.jsonl")) == 10
    # 6x the messages, the same corpora and orgs: peak memory may not grow with the data
    assert peaks[60_000] - peaks[10_000] < 40, peaks


def test_bad_arguments_are_refused(tmp_path: Path, datasets_dir: Path) -> None:
    with pytest.raises(ValueError, match="messages"):
        generate(tmp_path, datasets_dir=datasets_dir, orgs=5, messages=3)
    with pytest.raises(ValueError, match="invalid_rate"):
        generate(tmp_path, datasets_dir=datasets_dir, invalid_rate=1.5)

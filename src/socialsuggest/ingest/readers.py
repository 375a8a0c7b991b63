"""Read source files record by record, keeping each record's location.

A record that cannot even be decoded (broken JSON line, unreadable row) is yielded
as a :class:`Undecodable` so that it is quarantined like any other bad record:
nothing from the input is dropped without a trace.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow.parquet as pq

SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".csv", ".parquet")


@dataclass(frozen=True)
class Undecodable:
    raw: str
    reason: str


Record = dict[str, Any] | Undecodable


def source_files(paths: list[Path]) -> list[Path]:
    """Expand directories into the supported files below them, in a stable order."""
    files: list[Path] = []
    for path in (p.resolve() for p in paths):
        if path.is_dir():
            files.extend(
                p for p in sorted(path.rglob("*")) if p.is_file() and p.name.endswith(SUFFIXES)
            )
        elif path.is_file():
            if not path.name.endswith(SUFFIXES):
                raise ValueError(f"path: {path} has an unsupported format (use {SUFFIXES})")
            files.append(path)
        else:
            raise FileNotFoundError(f"path: {path} does not exist")
    return files


def read_records(path: Path) -> Iterator[tuple[str, Record]]:
    """Yield ``(location, record)`` pairs; location is ``file:line`` or ``file:row``."""
    name = path.name
    if name.endswith(".parquet"):
        yield from _parquet(path)
    elif name.endswith(".csv"):
        yield from _csv(path)
    else:
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            yield from _jsonl(path, handle)


def _jsonl(path: Path, handle: IO[str]) -> Iterator[tuple[str, Record]]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        location = f"{path}:{number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield location, Undecodable(line.rstrip("\n"), f"line is not valid JSON ({exc.msg})")
            continue
        if isinstance(value, dict):
            yield location, value
        else:
            yield location, Undecodable(line.rstrip("\n"), "line is not a JSON object")


def _csv(path: Path) -> Iterator[tuple[str, Record]]:
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.DictReader(handle)
        for number, row in enumerate(reader, start=2):  # row 1 is the header
            location = f"{path}:{number}"
            if None in row:  # more cells than header columns
                yield location, Undecodable(json.dumps(row, default=str), "row has extra cells")
                continue
            yield location, dict(row)


def _parquet(path: Path) -> Iterator[tuple[str, Record]]:
    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
        for row in batch.to_pylist():
            number += 1
            yield f"{path}:row {number}", row

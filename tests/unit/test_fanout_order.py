"""Both fan-outs start the orgs with the most processed data first.

An org's fit grows faster than its data: a large org started last runs alone on one
core at the end of the job while the other cores have nothing left to do.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from socialsuggest.lake import Lake
from socialsuggest.processing.tags import FAMILY
from socialsuggest.training.fanout import largest_first


def _write(lake: Lake, org: str, days: int, rows: int) -> None:
    for day in range(1, days + 1):
        table = pa.table({"message_id": [f"m{i}" for i in range(rows)], "text": ["x" * 40] * rows})
        lake.write("processed", FAMILY, date(2026, 1, day), org, table)


def test_the_orgs_with_the_most_processed_data_come_first(lake: Lake) -> None:
    _write(lake, "a-small", days=1, rows=10)
    _write(lake, "b-large", days=3, rows=400)
    _write(lake, "c-middle", days=2, rows=200)
    _write(lake, "d-tied", days=1, rows=10)  # the same bytes as a-small
    _write(lake, "z-not-asked", days=5, rows=900)
    asked = ["a-small", "d-tied", "ghost", "c-middle", "b-large"]
    processed = lake.files("processed", FAMILY)
    # by size over every day's files; ties in name order; an org with no files last
    assert largest_first(processed, asked) == ["b-large", "c-middle", "a-small", "d-tied", "ghost"]
    assert largest_first(processed, reversed(asked)) == largest_first(processed, asked)
    assert largest_first(processed, ["a-small", "b-large", "a-small"]) == [
        "b-large",
        "a-small",
        "a-small",
    ]

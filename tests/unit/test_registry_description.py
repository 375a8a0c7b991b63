"""A rejected version's registry description fits what MLflow's SQL stores hold.

Postgres (the services profile's MLflow backend) refuses a description over 5,000
characters, and the integration gate can reject with twenty reasons of up to 300
characters each: an uncut description would fail the publish step instead of
recording the rejection.
"""

from __future__ import annotations

from socialsuggest.registry.registry import DESCRIPTION_MAX, _rejected


def test_a_short_rejection_is_described_whole() -> None:
    assert _rejected(["latency: p95 319.2 ms > budget 250 ms"]) == (
        "REJECTED: latency: p95 319.2 ms > budget 250 ms"
    )


def test_a_long_rejection_is_cut_to_what_the_store_holds() -> None:
    reasons = [f"request {i}: " + "x" * 290 for i in range(20)]
    described = _rejected(reasons)
    assert len(described) == DESCRIPTION_MAX == 5000
    assert described.startswith("REJECTED: request 0: ") and described.endswith("…")

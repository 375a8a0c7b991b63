"""Experiment assignment and the champion/challenger comparison (pure functions)."""

from __future__ import annotations

import pytest

from socialsuggest.serving.experiments import Experiment, assign, bucket, compare


def _ab(fraction: float) -> Experiment:
    return Experiment("ab", 2, fraction, "2026-11-30T00:00:00+00:00", "ops", "test")


def test_a_user_stays_on_one_variant_and_the_share_matches_the_fraction() -> None:
    experiment = _ab(0.2)
    variants = [assign(experiment, "acme", f"agent-{i}") for i in range(20_000)]
    share = variants.count("challenger") / len(variants)
    assert 0.19 < share < 0.21
    assert [assign(experiment, "acme", f"agent-{i}") for i in range(100)] == variants[:100]
    # the same user lands independently in another org's experiment
    assert bucket("acme", "agent-1") != bucket("globex", "agent-1")


def test_shadow_and_requests_without_a_unit_always_get_the_champion() -> None:
    shadow = Experiment("shadow", 2, 0.0, "2026-11-30T00:00:00+00:00", "ops", "test")
    assert {assign(shadow, "acme", f"u{i}") for i in range(1000)} == {"champion"}
    assert assign(_ab(1.0), "acme", None) == "champion"
    assert assign(_ab(1.0), "acme", "someone") == "challenger"
    assert assign(None, "acme", "someone") == "champion"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"mode": "canary"}, "mode"),
        ({"fraction": 1.5}, "fraction"),
        ({"fraction": 0.0}, "fraction"),
    ],
)
def test_bad_experiments_name_the_field(kwargs: dict[str, object], field: str) -> None:
    base: dict[str, object] = {"mode": "ab", "challenger_version": 2, "fraction": 0.1,
                               "started_at": "x", "actor": "ops", "reason": "r"}  # fmt: skip
    with pytest.raises(ValueError, match=field):
        Experiment(**{**base, **kwargs})  # type: ignore[arg-type]


def test_the_tag_round_trips() -> None:
    experiment = _ab(0.25)
    assert Experiment.from_tag(experiment.to_tag()) == experiment


def test_newcombe_interval_matches_the_published_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, example (b): 56/70 vs 48/80,
    # method 10 gives +0.0524 to +0.3339 for the difference 0.2
    result = compare(champion=(48, 80), challenger=(56, 70))
    assert result.difference == pytest.approx(0.2)
    assert result.low == pytest.approx(0.0524, abs=5e-4)
    assert result.high == pytest.approx(0.3339, abs=5e-4)
    assert result.verdict == "better"
    assert compare(champion=(56, 70), challenger=(48, 80)).verdict == "worse"
    assert compare(champion=(50, 100), challenger=(52, 100)).verdict == "no difference yet"
    assert compare(champion=(5, 10), challenger=(9, 10)).verdict == "too little data"

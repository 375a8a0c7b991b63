from __future__ import annotations

from socialsuggest.quality import GateConfig, model_gate

GOOD = {"hit_rate@3": 0.80, "ndcg@3": 0.60}


def test_first_candidate_with_enabled_tags_passes() -> None:
    result = model_gate(enabled_tags=12, candidate=GOOD, production=None)
    assert result.passed and result.reasons == []
    assert result.checks["candidate.ndcg@3"] == 0.60


def test_no_enabled_tag_is_rejected() -> None:
    result = model_gate(enabled_tags=0, candidate=GOOD, production=None)
    assert not result.passed
    assert result.reasons[0].startswith("enabled_tags: 0 < 1")


def test_regression_beyond_tolerance_is_rejected_within_it_accepted() -> None:
    worse = {"hit_rate@3": 0.70, "ndcg@3": 0.59}
    result = model_gate(enabled_tags=5, candidate=worse, production=GOOD)
    assert not result.passed
    assert len(result.reasons) == 1 and result.reasons[0].startswith(
        "hit_rate@3: 0.7000 vs production 0.8000"
    )
    slightly = {"hit_rate@3": 0.79, "ndcg@3": 0.585}
    assert model_gate(enabled_tags=5, candidate=slightly, production=GOOD).passed
    strict = GateConfig(tolerance=0.0)
    assert not model_gate(enabled_tags=5, candidate=slightly, production=GOOD, config=strict).passed


def test_missing_metric_is_a_reason_not_a_crash() -> None:
    result = model_gate(enabled_tags=5, candidate={"ndcg@3": 0.9}, production=GOOD)
    assert not result.passed and "hit_rate@3: missing" in result.reasons[0]

"""The retrain policy's decision for one org, reason by reason (pure: no registry, no lake)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest

from socialsuggest.models.tags import TagModelConfig
from socialsuggest.processing.splits import archived_digest
from socialsuggest.registry import VersionInfo
from socialsuggest.registry.registry import ERASED_TAG
from socialsuggest.training.policy import (
    ARCHIVED_TAG,
    CONFIG_TAG,
    LEARNER_CHOSEN_TAG,
    LEARNER_TAG,
    RetrainPolicy,
    config_sha,
    rejected_by_gates,
    reusable_learner,
    why_retrain,
)

CONFIG = TagModelConfig()
CODE = "abc123"
NOW = datetime(2026, 11, 2, 6, tzinfo=UTC)


def _production(**tags: str) -> VersionInfo:
    return _version(3, ("production",), **tags)


def _version(number: int, aliases: tuple[str, ...] = (), **tags: str) -> VersionInfo:
    return VersionInfo(
        name="tags.acme",
        version=number,
        aliases=aliases,
        tags={
            "code_version": CODE,
            CONFIG_TAG: config_sha(CONFIG),
            "data_window.end": "2026-10-31T23:50:00+00:00",
            **tags,
        },
        run_id="r",
        created="2026-11-01T06:00:00+00:00",
    )


def _rows(old: int, new: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"org": "acme", "dt": [date(2026, 10, 31), date(2026, 11, 1)], "rows": [old, new]}
    )


def _lifecycle(created: str | None = None, archived: str | None = None) -> pd.DataFrame:
    at = [pd.Timestamp(x) if x else pd.NaT for x in (created, archived)]
    return pd.DataFrame(
        {
            "org_id": ["acme"],
            "tag": ["billing"],
            "created_at": pd.Series([at[0]], dtype="datetime64[us, UTC]"),
            "archived_at": pd.Series([at[1]], dtype="datetime64[us, UTC]"),
        }
    )


def _decide(
    production: VersionInfo | None = None,
    *,
    rows: pd.DataFrame | None = None,
    lifecycle: pd.DataFrame | None = None,
    policy: RetrainPolicy | None = None,
    config: TagModelConfig = CONFIG,
    erased: bool = False,
    rejected: VersionInfo | None = None,
) -> tuple[str, str]:
    return why_retrain(
        production,
        rows=_rows(1000, 30) if rows is None else rows,
        lifecycle=_lifecycle("2026-09-01") if lifecycle is None else lifecycle,
        policy=policy or RetrainPolicy(mode="changed"),
        config=config,
        code=CODE,
        as_of=NOW,
        erased=erased,
        rejected=rejected,
    )


def test_a_fresh_model_is_kept_and_the_reason_gives_the_new_share() -> None:
    action, reason = _decide(_production())
    assert action == "keep"
    assert reason.startswith("fresh: 2.9% new examples")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"production": None}, "no production model"),
        ({"policy": RetrainPolicy(mode="all")}, "retrain mode 'all'"),
        ({"erased": True}, "erased data"),
        ({"production": _production(**{ERASED_TAG: "true"})}, "erased data"),
        ({"production": _production(code_version="other")}, "code changed"),
        ({"config": TagModelConfig(C=3.0)}, "model configuration changed"),
        ({"lifecycle": _lifecycle(created="2026-11-01T09:00:00+00:00")}, "1 tags created"),
        ({"rows": _rows(1000, 60)}, "5.7% new examples"),
        ({"policy": RetrainPolicy(mode="changed", max_age_days=0.5)}, "1.0 days old"),
    ],
)
def test_each_staleness_retrains_and_says_why(kwargs: dict, expected: str) -> None:
    production = kwargs.pop("production", _production())
    action, reason = _decide(production, **kwargs)
    assert action == "train", reason
    assert expected in reason


def test_a_capped_org_measures_new_rows_against_what_it_trains_on() -> None:
    """1,030 rows, 30 new: 2.9% of the lake, but 6.0% of the newest 500 it trains on."""
    capped = TagModelConfig(max_examples=500)
    production = _production(**{CONFIG_TAG: config_sha(capped)})
    assert _decide(production, config=capped) == ("train", "6.0% new examples")
    action, reason = _decide(production, config=capped, rows=_rows(100_000, 1))
    assert action == "keep" and reason.startswith("fresh: 0.2% new examples")


def test_tags_archived_since_the_window_only_switch_them_off_in_production() -> None:
    """Nothing to learn: the production model is edited, not refitted; but enough new
    data on top of an archive still means a retrain."""
    archived = _lifecycle("2026-09-01", "2026-11-01T10:00:00+00:00")
    action, reason = _decide(_production(), lifecycle=archived)
    assert action == "archive"
    assert reason.startswith("1 tags archived since the data window")
    assert _decide(_production(), lifecycle=archived, rows=_rows(1000, 60))[0] == "train"
    before_window = _lifecycle("2026-09-01", "2026-10-15T10:00:00+00:00")
    assert _decide(_production(), lifecycle=before_window)[0] == "keep"


def test_an_edit_that_switched_the_tag_off_is_not_edited_again_the_next_morning() -> None:
    """An edit keeps production's data window, so the archive is still "since the window"
    the next morning: the version's archived set says it is already off."""
    archived = _lifecycle("2026-09-01", "2026-11-01T10:00:00+00:00")
    edited = _production(**{ARCHIVED_TAG: archived_digest({"billing"})})
    action, reason = _decide(edited, lifecycle=archived)
    assert action == "keep" and reason.endswith("archived tags all off"), reason
    before_it = _production(**{ARCHIVED_TAG: archived_digest(set())})
    action, reason = _decide(before_it, lifecycle=archived)
    assert (action, reason) == (
        "archive",
        "archived tags changed since v3 (1 archived now; 2.9% new)",
    )
    # an archive the version has not applied, whenever it was dated (a late event)
    old_archive = _lifecycle("2026-09-01", "2026-10-15T10:00:00+00:00")
    assert _decide(before_it, lifecycle=old_archive)[0] == "archive"
    assert _decide(edited, lifecycle=old_archive)[0] == "keep"


def test_a_model_without_a_data_window_or_config_tag_is_retrained() -> None:
    """Versions registered before the policy existed carry no config tag: retrain once."""
    old = _production()
    old.tags.pop(CONFIG_TAG)
    assert _decide(old) == ("train", "model configuration changed")
    no_window = _production()
    no_window.tags.pop("data_window.end")
    assert _decide(no_window) == ("train", "production has no data window")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mode", "some", "retrain mode"),
        ("min_new_fraction", 1.5, "min_new_fraction"),
        ("max_age_days", 0, "max_age_days"),
        ("learner_recheck_days", -1, "learner_recheck_days"),
    ],
)
def test_bad_policy_values_are_refused_by_name(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetrainPolicy(**{field: value})  # type: ignore[arg-type]


def _rejected(**tags: str) -> VersionInfo:
    return _version(4, **{"gate.passed": "false", **tags})


def test_a_rejected_candidate_on_barely_changed_data_waits() -> None:
    """No production and the gates rejected the latest candidate: the same data would be
    rejected again, so the org waits (archived tags too: there is no model to edit)."""
    action, reason = _decide(None, rejected=_rejected())
    assert action == "wait"
    assert reason.startswith("no production model: v4 was rejected")
    assert "2.9% new examples" in reason
    archived = _lifecycle("2026-09-01", "2026-11-01T10:00:00+00:00")
    assert _decide(None, rejected=_rejected(), lifecycle=archived)[0] == "wait"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"rejected": _rejected(code_version="other")}, "code changed"),
        ({"config": TagModelConfig(C=3.0)}, "model configuration changed"),
        ({"erased": True}, "rejected v4 was trained on erased data"),
        ({"lifecycle": _lifecycle(created="2026-11-01T09:00:00+00:00")}, "1 tags created"),
        ({"rows": _rows(1000, 60)}, "5.7% new examples"),
        (
            {"policy": RetrainPolicy(mode="changed", max_age_days=0.5)},
            "rejected v4 is 1.0 days old",
        ),
        ({"rejected": _rejected(**{"data_window.end": ""})}, "rejected v4 has no data window"),
    ],
)
def test_a_rejected_candidate_is_retried_once_it_is_stale(kwargs: dict, expected: str) -> None:
    rejected = kwargs.pop("rejected", _rejected())
    action, reason = _decide(None, rejected=rejected, **kwargs)
    assert action == "train", reason
    assert reason.startswith(f"no production model; {expected}")


def test_only_a_latest_version_the_model_gates_rejected_makes_an_org_wait() -> None:
    accepted = _version(2, **{"gate.passed": "true"})
    integration_failed = _version(5, **{"gate.passed": "false", "integration.passed": "false"})
    assert rejected_by_gates([]) is None
    assert rejected_by_gates([_rejected(), accepted]) == _rejected()  # v4 is the latest
    assert rejected_by_gates([accepted]) is None
    assert rejected_by_gates([_rejected(), _version(6, **{"gate.passed": "true"})]) is None
    # the serving check failing may be the day's fault, not the data's: retried
    assert rejected_by_gates([_rejected(), integration_failed]) is None


def test_a_refit_reuses_the_learner_production_chose_until_the_choice_is_a_week_old() -> None:
    """The comparison of learners is paid once a week, not every morning; it is made
    again when the choice is old, the configuration changed, or production has none."""
    policy = RetrainPolicy(mode="changed")
    chose = {LEARNER_TAG: "logistic_words", LEARNER_CHOSEN_TAG: "2026-10-27T06:00:00+00:00"}
    assert reusable_learner(_production(**chose), policy, CONFIG, NOW) == (
        "logistic_words", "2026-10-27T06:00:00+00:00"
    )  # fmt: skip
    week_old = {**chose, LEARNER_CHOSEN_TAG: "2026-10-26T06:00:00+00:00"}
    assert reusable_learner(_production(**week_old), policy, CONFIG, NOW) is None
    other = {**chose, CONFIG_TAG: config_sha(TagModelConfig(C=1.0))}
    assert reusable_learner(_production(**other), policy, CONFIG, NOW) is None
    assert reusable_learner(_production(), policy, CONFIG, NOW) is None  # before the choice
    assert reusable_learner(None, policy, CONFIG, NOW) is None
    garbled = {**chose, LEARNER_CHOSEN_TAG: "last tuesday"}
    assert reusable_learner(_production(**garbled), policy, CONFIG, NOW) is None
    every_fit = RetrainPolicy(mode="changed", learner_recheck_days=0)
    assert reusable_learner(_production(**chose), every_fit, CONFIG, NOW) is None
    fixed = TagModelConfig(choose_learner=False)
    fixed_tags = {**chose, CONFIG_TAG: config_sha(fixed)}
    assert reusable_learner(_production(**fixed_tags), policy, fixed, NOW) is None

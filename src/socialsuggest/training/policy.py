"""Which orgs the scheduled retrain trains: the ones whose model is no longer fresh.

Why: retraining every org every morning makes one day's increment cost as much as a
full retrain (measured: 0.74 of it at 20 orgs, and training plus registration are
~85% of the cycle), although for most orgs one more day is a few percent more data and
the model trained yesterday is as good. An org is retrained when any of these holds,
otherwise its production model keeps serving and the cycle says why:

* it has no production model, or production was trained on data a deletion request
  erased, or by other code or another model configuration;
* a tag of the org was created after the production model's data window ended (new
  tags must be learnt: "picks up new tags");
* the new examples since that window are at least ``min_new_fraction`` of the total;
* production is older than ``max_age_days`` (bounded staleness, whatever the data).

When the only change is tags archived since the window, nothing needs learning: the
production model with those tags switched off (``TagModel.with_archived``) is evaluated
and published as a new version ("stops suggesting archived ones") at the cost of a
registration, not a training. On the synthetic lakes a third of the orgs archive a tag
on a given day, and those were most of the increment's cost. Each version records the
archived set it has switched off (``ARCHIVED_TAG``): the edit keeps production's data
window, so "archived since the window" alone would edit it again every morning.

An org with no production model whose latest candidate the model gates rejected is not
refitted on the same data either: the same rules are read against that candidate, and
until one holds (new tags, enough new examples, its age, other code) the org *waits*.
At 1,000 orgs of ~100 messages, the gates rejected most and retrying them every morning
made the increment 0.54 of a full cycle.

A refitted org fits the learner its production model chose (``TagModelConfig.
choose_learner``) without comparing the candidates again, until that choice is
``learner_recheck_days`` old: which learner suits an org is a property of its messages,
which a day does not change, and the comparison costs 17-21% of a fit where the SVM is
kept on the StackExchange sets (``tags_accuracy.md``, 2026-12-04). Each version records
its learner and when it was chosen (``LEARNER_TAG``, ``LEARNER_CHOSEN_TAG``).

The decision reads only the registry's version tags and the processed zone's file
listing (row counts from Parquet footers), so skipping an org costs no training read.
``mode="all"`` retrains every org: a manual run, or the trigger form's choice.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import pandas as pd

from socialsuggest.config import Settings
from socialsuggest.lake import Lake
from socialsuggest.models.tags import TagModelConfig
from socialsuggest.processing.splits import archived_digest, archived_tags, load_tag_lifecycle
from socialsuggest.registry import PRODUCTION, Registry, code_version, model_name
from socialsuggest.registry.registry import VersionInfo

RetrainMode = Literal["changed", "all"]
#: train: refit on the org's data; archive: switch the newly archived tags off in the
#: production model (no refit); keep: production stays as it is; wait: no production, and
#: the latest candidate was rejected on data that has not changed enough to retry.
Action = Literal["train", "archive", "keep", "wait"]
CONFIG_TAG = "model.config_sha"  # which TagModelConfig trained the version
#: ``archived_digest`` of the tags a version has switched off. An edit keeps production's
#: data window, so "archived after the window" alone stayed true after the edit and the
#: org was edited again every morning (a new version a day, since its data grew) until
#: its next refit.
ARCHIVED_TAG = "model.archived_sha"
#: The learner the version was fitted with, and when (ISO time) that learner was chosen
#: by comparing the candidates on validation: a version that reused it carries the date.
LEARNER_TAG = "model.learner"
LEARNER_CHOSEN_TAG = "model.learner_chosen_at"


def config_sha(config: object) -> str:
    """Any family's model config (a dataclass: its repr names every field)."""
    return hashlib.sha256(repr(config).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RetrainPolicy:
    mode: RetrainMode = "all"
    #: Retrain once new examples are this share of the org's processed examples (a day
    #: of a 30-day window is 3.4%, of a 90-day one 1.1%).
    min_new_fraction: float = 0.05
    #: Retrain a model this old whatever else holds.
    max_age_days: float = 7.0
    #: Reuse the learner production chose up to this many days ago; 0 = choose every fit.
    learner_recheck_days: float = 7.0

    @classmethod
    def from_settings(cls, settings: Settings, mode: RetrainMode = "changed") -> RetrainPolicy:
        return cls(
            mode=mode,
            min_new_fraction=settings.retrain_min_new_fraction,
            max_age_days=settings.retrain_max_age_days,
            learner_recheck_days=settings.retrain_learner_recheck_days,
        )

    def __post_init__(self) -> None:
        if self.mode not in ("changed", "all"):
            raise ValueError(f"retrain mode: {self.mode!r} is not 'changed' or 'all'")
        if not 0 <= self.min_new_fraction <= 1:
            raise ValueError("min_new_fraction: must be in [0, 1]")
        if self.max_age_days <= 0:
            raise ValueError("max_age_days: must be positive")
        if self.learner_recheck_days < 0:
            raise ValueError("learner_recheck_days: must be >= 0")


@dataclass
class RetrainPlan:
    train: list[str] = field(default_factory=list)
    #: org -> why its production model is still fresh
    fresh: dict[str, str] = field(default_factory=dict)
    #: org -> why it is retrained
    reasons: dict[str, str] = field(default_factory=dict)
    #: org -> why its production model only needs newly archived tags switched off
    archive: dict[str, str] = field(default_factory=dict)
    #: org without production -> why its rejected candidate is not retried yet
    waiting: dict[str, str] = field(default_factory=dict)
    #: fresh or archive-only org -> its production version
    production: dict[str, VersionInfo] = field(default_factory=dict)
    #: retrained org -> (learner, when chosen) to fit again without comparing candidates
    learners: dict[str, tuple[str, str]] = field(default_factory=dict)


def _processed_rows(lake: Lake, family: str, orgs: set[str]) -> pd.DataFrame:
    files = [f for f in lake.files("processed", family) if f.org in orgs]
    rows = [(f.org, f.dt, lake.num_rows(f.key)) for f in files]
    return pd.DataFrame(rows, columns=["org", "dt", "rows"])


def why_retrain(
    production: VersionInfo | None,
    *,
    rows: pd.DataFrame,
    lifecycle: pd.DataFrame,
    policy: RetrainPolicy,
    config: TagModelConfig,
    code: str,
    as_of: datetime,
    erased: bool = False,
    rejected: VersionInfo | None = None,
) -> tuple[Action, str]:
    """What to do with one org and why; ``rows``/``lifecycle`` are the org's own.

    ``rejected``: for an org without production, its latest version when the model gates
    rejected it. Their verdict depends only on the data, code and configuration, so
    refitting the same data every morning would be rejected again (measured: at 1,000
    small orgs, 796 of the increment's refits were such orgs): the org waits, like a
    fresh model, until one of the staleness rules holds for that candidate.
    """
    if policy.mode == "all":
        return "train", "retrain mode 'all'"
    judged = production or rejected
    if judged is None:
        return "train", "no production model"
    stale, share = _staleness(
        judged, "production" if production else f"rejected v{judged.version}", rows=rows,
        lifecycle=lifecycle, policy=policy, config=config, code=code, as_of=as_of,
        erased=erased,
    )  # fmt: skip
    if production is None:
        if stale:
            return "train", f"no production model; {stale}"
        return "wait", (
            f"no production model: v{judged.version} was rejected and the same data would "
            f"be again ({share:.1%} new examples, no tag created)"
        )
    if stale:
        return "train", stale
    applied = production.tags.get(ARCHIVED_TAG)
    if applied is not None:
        now = archived_tags(lifecycle, None, as_of)  # the set the job would switch off
        if archived_digest(now) != applied:
            return "archive", (
                f"archived tags changed since v{production.version} "
                f"({len(now)} archived now; {share:.1%} new)"
            )
        return "keep", f"fresh: {share:.1%} new examples, archived tags all off"
    # a version registered before it carried its archived set
    window_end = _utc(production.tags["data_window.end"])
    archived = int((lifecycle["archived_at"] > window_end).sum())
    if archived:
        return "archive", f"{archived} tags archived since the data window ({share:.1%} new)"
    return "keep", f"fresh: {share:.1%} new examples, no tag created or archived"


def _utc(text: str) -> pd.Timestamp:
    stamp = pd.Timestamp(text)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp


def _days_since(text: str, as_of: datetime) -> float:
    """Days from the ISO time ``text`` (a version's creation, a learner's choice) to ``as_of``."""
    return float((pd.Timestamp(as_of) - _utc(text)).total_seconds()) / 86_400


def _staleness(
    version: VersionInfo,
    what: str,
    *,
    rows: pd.DataFrame,
    lifecycle: pd.DataFrame,
    policy: RetrainPolicy,
    config: TagModelConfig,
    code: str,
    as_of: datetime,
    erased: bool,
) -> tuple[str | None, float]:
    """Why ``version`` (``what`` names it in the reason) is stale, or None; and the share
    of the org's examples that are newer than its data window."""
    if erased or version.trained_on_erased_data:
        return f"{what} was trained on erased data", 0.0
    if version.tags.get("code_version") != code:
        return "code changed", 0.0
    if version.tags.get(CONFIG_TAG) != config_sha(config):
        return "model configuration changed", 0.0
    age_days = _days_since(version.created, as_of)
    if age_days >= policy.max_age_days:
        return f"{what} is {age_days:.1f} days old", 0.0
    end_text = version.tags.get("data_window.end", "")
    if not end_text:
        return f"{what} has no data window", 0.0
    window_end = _utc(end_text)
    created = int((lifecycle["created_at"] > window_end).sum())
    if created:
        return f"{created} tags created since the data window", 0.0
    # A capped org trains on its newest ``max_examples``: new rows are measured against
    # those, or a large org would drift for weeks before its share of new data counted.
    total = min(int(rows["rows"].sum()), config.max_examples or sys.maxsize)
    new = int(rows.loc[rows["dt"] > window_end.date(), "rows"].sum())
    share = min(1.0, new / total) if total else 0.0
    if share >= policy.min_new_fraction:
        return f"{share:.1%} new examples", share
    return None, share


def rejected_by_gates(versions: list[VersionInfo]) -> VersionInfo | None:
    """The latest version, if the model gates rejected it. A version the integration gate
    failed is not one: its serving process may have failed for reasons of the day."""
    if not versions:
        return None
    latest = max(versions, key=lambda v: v.version)
    if latest.accepted or latest.tags.get("integration.passed") == "false":
        return None
    return latest


def plan_retrain(
    lake: Lake,
    registry: Registry,
    orgs: Iterable[str],
    *,
    family: str,
    policy: RetrainPolicy,
    config: TagModelConfig,
    as_of: datetime,
    erased: Iterable[str] = (),
) -> RetrainPlan:
    """Split ``orgs`` into those to train, those whose production model is fresh or only
    needs archived tags off, and those waiting for data that could change a rejection."""
    orgs = list(orgs)
    plan = RetrainPlan()
    if policy.mode == "all":
        plan.train = orgs
        plan.reasons = dict.fromkeys(orgs, "retrain mode 'all'")
        for org in orgs:
            production = registry.version_by_alias(model_name(family, org), PRODUCTION)
            if kept := reusable_learner(production, policy, config, as_of):
                plan.learners[org] = kept
        return plan
    erased_set, code = set(erased), code_version()
    rows = _processed_rows(lake, family, set(orgs))
    lifecycle = load_tag_lifecycle(lake)
    for org in orgs:
        name = model_name(family, org)
        production = registry.version_by_alias(name, PRODUCTION)
        rejected = None if production else rejected_by_gates(registry.versions(name))
        action, reason = why_retrain(
            production,
            rows=rows[rows["org"] == org],
            lifecycle=lifecycle[lifecycle["org_id"] == org],
            policy=policy,
            config=config,
            code=code,
            as_of=as_of,
            erased=org in erased_set,
            rejected=rejected,
        )
        if action == "wait":
            plan.waiting[org] = reason
        elif action == "train" or production is None:
            plan.train.append(org)
            plan.reasons[org] = reason
            if kept := reusable_learner(production, policy, config, as_of):
                plan.learners[org] = kept
        else:
            (plan.archive if action == "archive" else plan.fresh)[org] = reason
            plan.production[org] = production
    return plan


def reusable_learner(
    production: VersionInfo | None,
    policy: RetrainPolicy,
    config: TagModelConfig,
    as_of: datetime,
) -> tuple[str, str] | None:
    """(learner, when chosen) of production's model if a refit may fit it again without
    comparing: the same model configuration was asked for (another one may change which
    learner wins) and the choice is younger than ``policy.learner_recheck_days``."""
    if production is None or not config.choose_learner or policy.learner_recheck_days <= 0:
        return None
    learner, chosen = production.tags.get(LEARNER_TAG), production.tags.get(LEARNER_CHOSEN_TAG)
    if not learner or not chosen or production.tags.get(CONFIG_TAG) != config_sha(config):
        return None
    try:
        age_days = _days_since(chosen, as_of)
    except ValueError:  # a tag edited by hand: compare again
        return None
    return (learner, chosen) if 0 <= age_days < policy.learner_recheck_days else None

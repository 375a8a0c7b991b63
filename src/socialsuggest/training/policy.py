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
on a given day, and those were most of the increment's cost.

The decision reads only the registry's version tags and the processed zone's file
listing (row counts from Parquet footers), so skipping an org costs no training read.
``mode="all"`` retrains every org: a manual run, or the trigger form's choice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import pandas as pd

from socialsuggest.config import Settings
from socialsuggest.lake import Lake
from socialsuggest.models.tags import TagModelConfig
from socialsuggest.processing.splits import load_tag_lifecycle
from socialsuggest.registry import PRODUCTION, Registry, code_version, model_name
from socialsuggest.registry.registry import VersionInfo

RetrainMode = Literal["changed", "all"]
#: train: refit on the org's data; archive: switch the newly archived tags off in the
#: production model (no refit); keep: production stays as it is.
Action = Literal["train", "archive", "keep"]
CONFIG_TAG = "model.config_sha"  # which TagModelConfig trained the version


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

    @classmethod
    def from_settings(cls, settings: Settings, mode: RetrainMode = "changed") -> RetrainPolicy:
        return cls(
            mode=mode,
            min_new_fraction=settings.retrain_min_new_fraction,
            max_age_days=settings.retrain_max_age_days,
        )

    def __post_init__(self) -> None:
        if self.mode not in ("changed", "all"):
            raise ValueError(f"retrain mode: {self.mode!r} is not 'changed' or 'all'")
        if not 0 <= self.min_new_fraction <= 1:
            raise ValueError("min_new_fraction: must be in [0, 1]")
        if self.max_age_days <= 0:
            raise ValueError("max_age_days: must be positive")


@dataclass
class RetrainPlan:
    train: list[str] = field(default_factory=list)
    #: org -> why its production model is still fresh
    fresh: dict[str, str] = field(default_factory=dict)
    #: org -> why it is retrained
    reasons: dict[str, str] = field(default_factory=dict)
    #: org -> why its production model only needs newly archived tags switched off
    archive: dict[str, str] = field(default_factory=dict)
    #: fresh or archive-only org -> its production version
    production: dict[str, VersionInfo] = field(default_factory=dict)


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
) -> tuple[Action, str]:
    """What to do with one org and why; ``rows``/``lifecycle`` are the org's own."""
    if policy.mode == "all":
        return "train", "retrain mode 'all'"
    if production is None:
        return "train", "no production model"
    if erased or production.trained_on_erased_data:
        return "train", "production was trained on erased data"
    if production.tags.get("code_version") != code:
        return "train", "code changed"
    if production.tags.get(CONFIG_TAG) != config_sha(config):
        return "train", "model configuration changed"
    created = pd.Timestamp(production.created)
    created = created.tz_localize("UTC") if created.tzinfo is None else created
    age_days = (pd.Timestamp(as_of) - created).total_seconds() / 86_400
    if age_days >= policy.max_age_days:
        return "train", f"production is {age_days:.1f} days old"
    end_text = production.tags.get("data_window.end", "")
    if not end_text:
        return "train", "production has no data window"
    window_end = pd.Timestamp(end_text)
    window_end = window_end.tz_localize("UTC") if window_end.tzinfo is None else window_end
    created = int((lifecycle["created_at"] > window_end).sum())
    if created:
        return "train", f"{created} tags created since the data window"
    total = int(rows["rows"].sum())
    new = int(rows.loc[rows["dt"] > window_end.date(), "rows"].sum())
    share = new / total if total else 0.0
    if share >= policy.min_new_fraction:
        return "train", f"{share:.1%} new examples"
    archived = int((lifecycle["archived_at"] > window_end).sum())
    if archived:
        return "archive", f"{archived} tags archived since the data window ({share:.1%} new)"
    return "keep", f"fresh: {share:.1%} new examples, no tag created or archived"


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
    """Split ``orgs`` into those to train and those whose production model is fresh."""
    orgs = list(orgs)
    plan = RetrainPlan()
    if policy.mode == "all":
        plan.train = orgs
        plan.reasons = dict.fromkeys(orgs, "retrain mode 'all'")
        return plan
    erased_set, code = set(erased), code_version()
    rows = _processed_rows(lake, family, set(orgs))
    lifecycle = load_tag_lifecycle(lake)
    for org in orgs:
        production = registry.version_by_alias(model_name(family, org), PRODUCTION)
        action, reason = why_retrain(
            production,
            rows=rows[rows["org"] == org],
            lifecycle=lifecycle[lifecycle["org_id"] == org],
            policy=policy,
            config=config,
            code=code,
            as_of=as_of,
            erased=org in erased_set,
        )
        if action == "train" or production is None:
            plan.train.append(org)
            plan.reasons[org] = reason
        else:
            (plan.archive if action == "archive" else plan.fresh)[org] = reason
            plan.production[org] = production
    return plan

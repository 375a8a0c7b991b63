"""Training one org: split by time, fit the tag model, evaluate every mode.

This is the unit the fan-out distributes. It takes data in and gives a result
out; reading the org's data happens in the fan-out (in the worker that trains),
so the same function runs in a local process pool, inside Spark's
``applyInPandas`` and in tests. A failure is captured in the result, never
raised, so one bad org cannot fail the others.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

import pandas as pd

from socialsuggest.models.tags import TagModel, TagModelConfig
from socialsuggest.processing.splits import (
    VALID_FRAC,
    archived_digest,
    archived_tags,
    newest,
    time_split,
)
from socialsuggest.training.metrics import evaluate_model


@dataclass
class OrgResult:
    org: str
    ok: bool
    error: str | None = None
    model: TagModel | None = None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    summary: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    window: tuple[str, str] = ("", "")
    test: pd.DataFrame | None = None
    seconds: float = 0.0
    #: What the model was trained from (examples, archived tags, config): a re-run on
    #: the same data has the same fingerprint, so it can reuse the version it made.
    fingerprint: str = ""
    #: False: production's model with newly archived tags switched off, not refitted.
    refit: bool = True
    #: For such an edit: (production's version, its hybrid metrics on this ``test``), so
    #: publishing compares the two without downloading the model it was edited from again.
    production_metrics: tuple[int, dict[str, float]] | None = None
    #: ``archived_digest`` of the tags this model has switched off: registered with the
    #: version, so tomorrow's policy edits it again only if that set has changed.
    archived_digest: str = ""
    #: When the model's learner was chosen by comparing candidates (ISO time): this
    #: run's ``as_of``, or the earlier version's whose choice it reused. "" without one.
    learner_chosen_at: str = ""

    def released(self) -> OrgResult:
        """This result without its model and test slice: what a fan-out keeps of an org
        once its ``progress`` callback has published it.

        A trained org's model (vocabularies, weights, the neighbour vote's reference
        vectors) and test frame are megabytes in the driver. Kept for every org until
        the last one finished, they raised the driver's peak at 1M messages over 1,000
        orgs from 2.8 to 4.8 GB (``benchmarks/reports/scale_cycle.md``, 2026-12-06).
        """
        return replace(self, model=None, test=None, production_metrics=None)

    def flat_metrics(self) -> dict[str, float]:
        """``<mode>.<metric>`` for logging; NaNs dropped (MLflow refuses them)."""
        return {
            f"{mode}.{name}": value
            for mode, values in self.metrics.items()
            for name, value in values.items()
            if value == value  # not NaN
        }


def train_org(
    org: str,
    examples: pd.DataFrame,
    lifecycle: pd.DataFrame,
    config: TagModelConfig,
    *,
    as_of: datetime,
    valid_frac: float = VALID_FRAC,
    test_frac: float = 0.1,
    learner: tuple[str, str] | None = None,
) -> OrgResult:
    """Train and evaluate one org on its newest ``config.max_examples``; errors become
    ``ok=False`` with the reason. ``learner``: (name, when chosen) of a learner an
    earlier version chose, fitted again without comparing (``policy.reusable_learner``)."""
    result = _candidate(
        org, examples, lifecycle, as_of=as_of, valid_frac=valid_frac, test_frac=test_frac,
        max_examples=config.max_examples,
        build=lambda train, valid, archived: TagModel.fit(
            train, valid, config, archived=archived, learner=learner[0] if learner else None
        ),
    )  # fmt: skip
    model = result.model
    if model is not None and config.choose_learner:
        result.learner_chosen_at = as_of.isoformat()
        if learner is not None and model.learner == learner[0] and not model.learner_scores:
            result.learner_chosen_at = learner[1]  # not compared: the earlier choice's date
    return result


def archive_in_model(
    org: str,
    production: TagModel,
    examples: pd.DataFrame,
    lifecycle: pd.DataFrame,
    *,
    as_of: datetime,
    window: tuple[str, str],
    valid_frac: float = VALID_FRAC,
    test_frac: float = 0.1,
) -> OrgResult:
    """Production's model with the tags archived by ``as_of`` switched off: no refit.

    It is evaluated on the same newest test slice a retrain would use, so the gates
    compare it with production on equal terms. ``window`` stays production's: the
    model has learnt nothing newer, and the retrain policy measures new data from it.
    """
    return _candidate(
        org, examples, lifecycle, as_of=as_of, valid_frac=valid_frac, test_frac=test_frac,
        max_examples=production.config.max_examples,
        build=lambda _train, _valid, archived: production.with_archived(archived),
        window=window,
    )  # fmt: skip


def _candidate(
    org: str,
    examples: pd.DataFrame,
    lifecycle: pd.DataFrame,
    *,
    as_of: datetime,
    valid_frac: float,
    test_frac: float,
    max_examples: int | None,
    build: Callable[[pd.DataFrame, pd.DataFrame, set[str]], TagModel],
    window: tuple[str, str] | None = None,
) -> OrgResult:
    """Split, build the model, evaluate it on the test slice; errors become ``ok=False``.

    ``window`` given: the model was not fitted here (production edited), so it keeps
    that data window and reports only the test slice it was evaluated on.
    ``max_examples``: only the newest that many are split (``in_window`` counts them all).
    """
    started = time.perf_counter()
    refit = window is None
    in_window = len(examples)
    try:
        if examples.empty:
            raise ValueError(f"org {org}: no processed examples")
        examples = newest(examples, max_examples)
        train, valid, test = time_split(examples, valid_frac, test_frac)
        archived = archived_tags(lifecycle, org, as_of)
        model = build(train, valid, archived)
        metrics = evaluate_model(model, test, k=model.config.k)
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, ValueError):  # data problems get one line, bugs a short trace
            detail += "\n" + traceback.format_exc(limit=5)
        return OrgResult(
            org=org,
            ok=False,
            error=detail,
            counts={"examples": in_window},
            seconds=time.perf_counter() - started,
            refit=refit,
        )
    if window is None:
        created = pd.to_datetime(examples["created_at"], utc=True)
        window = (created.min().isoformat(), created.max().isoformat())
    counts = {"train": len(train), "valid": len(valid), "in_window": in_window} if refit else {}
    return OrgResult(
        org=org,
        ok=True,
        model=model,
        metrics=metrics,
        summary=model.summary(),
        counts={**counts, "test": len(test)},
        window=window,
        test=test,
        seconds=time.perf_counter() - started,
        fingerprint=fingerprint(examples, archived, model.requested),
        refit=refit,
        archived_digest=archived_digest(archived),
    )


def fingerprint(examples: pd.DataFrame, archived: Iterable[str], config: TagModelConfig) -> str:
    """sha256 of the training input: every example (order-independent), the archived
    tags and the model configuration."""
    digest = hashlib.sha256()
    rows = examples.sort_values("message_id").astype(str)
    digest.update(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes())
    digest.update("\x1f".join(sorted(archived)).encode())
    digest.update(repr(config).encode())
    return digest.hexdigest()[:32]

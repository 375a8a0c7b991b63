"""The tag-suggestion model: per-tag gated classifiers topped up with recently used tags.

Lifecycle: ``TagModel.fit(train, valid, config)`` on one org's examples → pickled into
an MLflow artifact → ``suggest`` at serving time with the org's live recent-tag list;
``with_archived`` switches tags off when an org archives them, without retraining.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from functools import partial
from typing import Any, Literal, cast, get_args

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from socialsuggest.models.tags import neighbours
from socialsuggest.models.tags.choice import CONFIGURED, candidates, choose, validation_score
from socialsuggest.models.tags.config import TagModelConfig
from socialsuggest.models.tags.features import FeatureBuilder
from socialsuggest.models.tags.linear import best_threshold, fit_tags, kept
from socialsuggest.training.metrics import auc_with_ci, score_groups

Mode = Literal["hybrid", "model", "recent"]
Source = Literal["model", "recent"]
Reason = Literal[
    "ok",
    "too_few_examples",
    "auc_lower_bound_below_threshold",
    "archived",
    "no_validation_positives",
    "no_validation_negatives",
    "no_vocabulary",
]
#: What a tag's AUC interval rests on: the validation window, or out-of-fold scores
#: over train + validation (a tag validation holds too few uses of; see ``_gate_out_of_fold``).
Evidence = Literal["validation", "out_of_fold"]
REQUIRED_COLUMNS = ("text", "tags")
FloatArray = npt.NDArray[np.floating[Any]]


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One suggested tag. ``score`` is the model probability for ``source="model"`` and
    0.0 for ``source="recent"`` (a recent tag is shown for its recency, not a score)."""

    tag: str
    score: float
    source: Source


@dataclass(frozen=True, slots=True)
class TagStats:
    """What training learned about one tag; the row of the per-tag gate report.

    ``n_pos``/``n_neg`` count the held-out examples the AUC interval rests on, which
    ``evidence`` names (validation, or out-of-fold over train + validation for a tag
    validation holds too few uses of); ``n_train_pos`` the training positives that
    decided whether the tag is modelled.
    Undefined numbers are nan.
    """

    tag: str
    n_train_pos: int
    n_pos: int
    n_neg: int
    auc: float
    ci_low: float
    ci_high: float
    threshold: float
    enabled: bool
    reason: Reason
    evidence: Evidence = "validation"

    def __setstate__(self, state: Sequence[Any]) -> None:
        """Unpickle, filling fields added since the model was pickled with defaults."""
        values = dict(zip([f.name for f in fields(self)], state, strict=False))
        for f in fields(self):
            object.__setattr__(self, f.name, values.get(f.name, f.default))


def _tag_lists(df: pd.DataFrame) -> list[list[str]]:
    """Tags as plain lists: Parquet round-trips give numpy arrays, missing gives None."""
    return [[] if t is None else [str(x) for x in t] for t in df["tags"]]


def _check_columns(df: pd.DataFrame, what: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{what} is missing column(s) {missing}")


def _indicator(tag_lists: Sequence[Iterable[str]], tags: Sequence[str]) -> npt.NDArray[np.bool_]:
    index = {t: j for j, t in enumerate(tags)}
    y = np.zeros((len(tag_lists), len(tags)), dtype=bool)
    for i, row in enumerate(tag_lists):
        for t in row:
            j = index.get(t)
            if j is not None:
                y[i, j] = True
    return y


def _recent_order(
    frames: Sequence[pd.DataFrame], archived: frozenset[str], half_life_days: float | None
) -> tuple[tuple[str, ...], dict[str, float]]:
    """The org's tags by recency-weighted use, most relevant first, and their prior.

    The prior is the recency-weighted share of messages carrying the tag: an estimate
    of P(tag) comparable with the classifiers' probabilities, used to rank recent
    tags the classifier cannot score (not modelled, or switched off by the gate).

    Each use counts ``0.5 ** (age / half_life)``, age measured from the newest
    message; ties (and ``half_life_days=None``) fall back to the last use, later
    row first. Without timestamps, row order stands in for time.
    """
    times: list[Any] = []
    rows: list[list[str]] = []
    for df in frames:
        rows.extend(_tag_lists(df))
        if "created_at" in df.columns:
            times.extend(df["created_at"].tolist())
        else:
            times.extend([None] * len(df))
    have_times = bool(times) and all(t is not None and not pd.isna(t) for t in times)
    order = (
        sorted(range(len(rows)), key=lambda i: (times[i], i))
        if have_times
        else list(range(len(rows)))
    )
    if have_times:
        newest = max(times)
        ages = [(newest - t).total_seconds() / 86400 for t in times]
    else:
        ages = [float(len(rows) - 1 - i) for i in range(len(rows))]
    weight: dict[str, float] = {}
    last_use: dict[str, int] = {}
    for rank, i in enumerate(order):
        decay = 1.0 if half_life_days is None else 0.5 ** (ages[i] / half_life_days)
        for tag in rows[i]:
            if tag in archived:
                continue
            weight[tag] = weight.get(tag, 0.0) + decay
            last_use[tag] = rank
    total = sum(1.0 if half_life_days is None else 0.5 ** (ages[i] / half_life_days) for i in order)
    prior = {t: w / total for t, w in weight.items()} if total else {}
    if half_life_days is None:
        return tuple(sorted(last_use, key=lambda t: -last_use[t])), prior
    return tuple(sorted(weight, key=lambda t: (-weight[t], -last_use[t]))), prior


def _unmodelled_stats(tag: str, n_train_pos: int, reason: Reason) -> TagStats:
    nan = math.nan
    return TagStats(tag, n_train_pos, 0, 0, nan, nan, nan, nan, False, reason)


def _auc_verdict(auc: float, low: float, bound: float) -> Literal["passed", "undecided", "failed"]:
    """The gate's rule, for the verdict (``_gate``) and for finding the tags validation
    cannot decide (``TagModel._inconclusive``): a tag passes when its AUC interval's
    lower end clears ``bound``; it is undecided when only the AUC itself does."""
    if low >= bound:
        return "passed"
    return "undecided" if auc > bound else "failed"


def _gate(
    tag: str,
    n_train_pos: int,
    y: npt.NDArray[np.bool_],
    p: FloatArray,
    config: TagModelConfig,
    evidence: Evidence = "validation",
) -> TagStats:
    """Held-out verdict for one modelled tag: AUC interval, threshold, on or off."""
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        reason: Reason = "no_validation_positives" if n_pos == 0 else "no_validation_negatives"
        nan = math.nan
        return TagStats(tag, n_train_pos, n_pos, n_neg, nan, nan, nan, nan, False, reason, evidence)
    groups = score_groups(p)
    auc, low, high = auc_with_ci(y, p, config.ci_level, groups)
    threshold, _ = best_threshold(y, p, config.threshold_beta, groups)
    enabled = _auc_verdict(auc, low, config.auc_lower_bound) == "passed"
    reason = "ok" if enabled else "auc_lower_bound_below_threshold"
    return TagStats(
        tag, n_train_pos, n_pos, n_neg, auc, low, high, threshold, enabled, reason, evidence
    )


@dataclass(frozen=True)
class _Lookups:
    """A model's ranking inputs for one recent-tag list (``TagModel._lookups``)."""

    #: The objects it was built from, compared by identity.
    key: tuple[Any, ...]
    #: The recent tags, de-duplicated and without archived ones, newest first.
    fallback: list[str]
    #: Modelled tags that may be suggested (``TagModel.active_mask``).
    active: npt.NDArray[np.bool_]
    #: The first ``recent_pool`` of ``fallback``; each one's column among the active
    #: modelled tags (-1: none) and its recency prior.
    pool: list[str]
    pool_column: npt.NDArray[np.int64]
    pool_prior: FloatArray
    #: Each pool tag's column among the vote's tags (``TagModel.knn_tags``) when it is
    #: not active (-1: active, or not voted on): what the vote orders in the top-up.
    pool_voted: npt.NDArray[np.int64]


@dataclass
class _Started:
    """A fit halfway: features, labels, the train fits and which tags validation judges
    (``thick``) or the out-of-fold gate will (``thin``)."""

    x_train: sp.csr_matrix
    x_valid: sp.csr_matrix
    y_train: npt.NDArray[np.bool_]
    y_valid: npt.NDArray[np.bool_]
    thin: npt.NDArray[np.intp]
    thick: npt.NDArray[np.intp]
    #: (n_features, n_tags), pruned: the train fits; empty columns for the other tags.
    coef: sp.csc_matrix
    counts: Counter[str]
    refit: bool
    #: Each validation row's tags (modelled or not): what the neighbour weight is chosen on.
    gold: list[frozenset[str]] = field(default_factory=list)
    #: Each training row's tags: the neighbour vote's labels.
    train_tags: list[list[str]] = field(default_factory=list)


@dataclass
class TagModel:
    """A fitted per-org tag model. Pure and picklable: no handles, no I/O.

    ``tags`` orders the columns of ``predict_proba``; ``tag_report`` has one entry per
    tag seen in training (modelled or not); ``recent_tags`` is the fallback list stored
    at training time, newest first.
    """

    config: TagModelConfig
    tags: tuple[str, ...]
    features: FeatureBuilder | None
    #: (n_features, n_tags), pruned and sparse (CSR, float32); models pickled before
    #: pruning hold a dense array, which every path here accepts too.
    coef: sp.csr_matrix | npt.NDArray[np.float32]
    intercept: FloatArray
    thresholds: FloatArray
    tag_report: dict[str, TagStats]
    recent_tags: tuple[str, ...]
    archived: frozenset[str] = field(default_factory=frozenset)
    #: Recency-weighted share of messages carrying each tag (ranks unscored recent tags).
    recent_prior: dict[str, float] = field(default_factory=dict)
    #: (a, b) of p = sigmoid(a·score + b), one pair for every tag of the org, fitted on
    #: validation: an SVM margin is not a probability, and the hybrid weighs model scores
    #: against the recency prior. Shared by all tags, so it never reorders them. Models
    #: pickled before it have the class default (1, 0): scores read as logits, as then.
    calibration: tuple[float, float] = (1.0, 0.0)
    #: With ``choose_learner``, the configuration asked for (``config`` is then the chosen
    #: learner's); the retrain policy and fingerprints compare this one. None otherwise.
    requested_config: TagModelConfig | None = None
    #: The learner ``choose_learner`` kept (``choice.CONFIGURED`` without a choice) and
    #: each candidate's validation hybrid NDCG@3, for the registry.
    learner: str = CONFIGURED
    learner_scores: tuple[tuple[str, float], ...] = ()
    #: Weight of the neighbour vote in the recent-tag top-up (0: off; see
    #: ``_fit_neighbours``) and, when on, its reference set: the word block (the first
    #: ``knn_width`` feature columns) of the org's newest messages, transposed
    #: (n_word_features, n_reference, float32), and which of ``knn_tags`` each carried
    #: (n_reference, n_knn_tags): the modelled tags, then every other tag seen and not
    #: archived (a tag first used yesterday can be voted for before it can be
    #: modelled). Derived from messages, like the weights: an erasure flags the model
    #: and queues its retrain, which rebuilds them.
    knn_weight: float = 0.0
    knn_tags: tuple[str, ...] = ()
    knn_reference: sp.csr_matrix | None = None
    knn_labels: sp.csr_matrix | None = None
    knn_width: int = 0
    #: Each weight tried (0 first) and its validation hybrid NDCG@3, for the registry.
    knn_scores: tuple[tuple[float, float], ...] = ()

    @property
    def requested(self) -> TagModelConfig:
        """The configuration the caller asked for, whichever learner was kept."""
        return self.requested_config or self.config

    # ---------------------------------------------------------------- training
    @classmethod
    def fit(
        cls,
        train: pd.DataFrame,
        valid: pd.DataFrame,
        config: TagModelConfig | None = None,
        archived: Iterable[str] = (),
        learner: str | None = None,
    ) -> TagModel:
        """Fit on ``train``, gate and pick thresholds on ``valid`` (the later period).

        ``archived`` tags are neither modelled nor suggested. With
        ``config.choose_learner`` each candidate learner (``choice``) is fitted on train
        and ranked on ``valid``; only the better one is finished. ``learner`` names the
        candidate to fit without comparing (one an earlier fit chose); a name that is
        not a candidate (the code changed) is ignored and the comparison made.
        """
        config = config or TagModelConfig()
        _check_columns(train, "train")
        _check_columns(valid, "valid")
        archived = frozenset(archived)
        if not config.choose_learner:
            model, started = cls._start(train, valid, config, archived)
            model._finish(started)
            return model
        options = candidates(config)
        if learner is not None and learner in options:
            options = {learner: options[learner]}
        elif valid.empty:  # nothing to choose on: the configured learner, alone
            options = {CONFIGURED: options[CONFIGURED]}
        begun = {
            name: cls._start(train, valid, option, archived) for name, option in options.items()
        }
        scores = (
            {name: m._provisional_score(s, valid) for name, (m, s) in begun.items()}
            if len(options) > 1
            else {}
        )
        name = learner if learner is not None and learner in begun else choose(scores)
        model, started = begun[name]
        del begun  # the other learner's features and weights
        model._finish(started)
        model.requested_config, model.learner = config, name
        model.learner_scores = tuple(scores.items())
        return model

    @classmethod
    def _start(
        cls,
        train: pd.DataFrame,
        valid: pd.DataFrame,
        config: TagModelConfig,
        archived: frozenset[str],
    ) -> tuple[TagModel, _Started | None]:
        """The model up to its first fits: which tags are modelled, the features, and
        every tag validation can judge fitted on train (None: nothing to fit)."""
        train_tags, valid_tags = _tag_lists(train), _tag_lists(valid)
        counts = Counter(t for row in train_tags for t in set(row))
        seen = sorted(set(counts) | {t for row in valid_tags for t in row})
        report: dict[str, TagStats] = {}
        modelled: list[str] = []
        for tag in seen:
            if tag in archived:
                report[tag] = _unmodelled_stats(tag, counts[tag], "archived")
            elif counts[tag] < config.min_positives or counts[tag] >= len(train):
                report[tag] = _unmodelled_stats(tag, counts[tag], "too_few_examples")
            else:
                modelled.append(tag)
        recent, prior = _recent_order([train, valid], archived, config.recent_half_life_days)
        features, x_train = None, None
        if modelled:
            try:
                features, x_train = FeatureBuilder.fit_transform(train, config)
            except ValueError:  # empty vocabulary: nothing to learn from
                for tag in modelled:
                    report[tag] = _unmodelled_stats(tag, counts[tag], "no_vocabulary")
                modelled = []
        model = cls._empty(config, report, recent, archived, features)
        model.recent_prior = prior
        if not modelled or x_train is None:
            return model, None
        return model, model._fit_first(x_train, valid, train_tags, valid_tags, modelled, counts)

    @classmethod
    def _empty(
        cls,
        config: TagModelConfig,
        report: dict[str, TagStats],
        recent: tuple[str, ...],
        archived: frozenset[str],
        features: FeatureBuilder | None,
    ) -> TagModel:
        n_features = features.n_features if features is not None else 0
        return cls(
            config=config,
            tags=(),
            features=features,
            coef=sp.csr_matrix((n_features, 0), dtype=np.float32),
            intercept=np.zeros(0),
            thresholds=np.zeros(0),
            tag_report=report,
            recent_tags=recent,
            archived=archived,
        )

    def _fit_first(
        self,
        x_train: sp.csr_matrix,
        valid: pd.DataFrame,
        train_tags: list[list[str]],
        valid_tags: list[list[str]],
        modelled: list[str],
        counts: Counter[str],
    ) -> _Started:
        """Every tag validation can judge (and, without the refit, every tag) fitted on
        train: the first half of the fit, where a choice of learner compares them."""
        assert self.features is not None
        if valid.empty:  # (an org too small to model any tag needs none: recent tags only)
            raise ValueError(
                f"valid: no rows, and {len(modelled)} tags have enough examples to model: "
                "their gates and thresholds are chosen on a validation window"
            )
        x_valid = self.features.transform(valid)
        y_train, y_valid = _indicator(train_tags, modelled), _indicator(valid_tags, modelled)
        self.tags = tuple(modelled)
        n_tags = len(modelled)
        refit = self.config.refit_on_valid and len(valid) > 0
        thin_mask = np.zeros(n_tags, dtype=bool)
        if self.config.gate_cv_folds >= 2:
            thin_mask = y_valid.sum(axis=0) < self.config.gate_cv_below
        thin, thick = np.flatnonzero(thin_mask), np.flatnonzero(~thin_mask)
        # without the refit a thin tag is served as fitted on train, like the others
        first = thick if refit else np.arange(n_tags)
        fitted, intercept = fit_tags(
            x_train, y_train[:, first], self.config, self.config.prune_below
        )
        coef = _with_columns(_no_columns(x_train.shape[1], n_tags), first, fitted)
        self.intercept = np.zeros(n_tags)
        self.intercept[first] = intercept
        gold = [frozenset(row) for row in valid_tags]
        return _Started(
            x_train, x_valid, y_train, y_valid, thin, thick, coef, counts, refit, gold, train_tags
        )

    def _provisional_score(self, started: _Started | None, valid: pd.DataFrame) -> float:
        """``choice.validation_score`` of the model as fitted on train, with
        only the tags validation judges: what a choice of learner compares.

        Thin tags (judged out of fold later) are left out: their gate costs most of a
        full fit and they are rare, so both learners lose alike. Calibration and gates
        here read validation only and are redone by ``_finish``.
        """
        probe = copy.copy(self)
        probe.tag_report = dict(self.tag_report)
        if started is None:
            gold = [frozenset(row) for row in _tag_lists(valid)]
            return validation_score(probe, np.zeros((len(valid), 0)), gold)
        gold, thick = started.gold, started.thick
        probe.coef = started.coef.tocsr()
        s_all = probe._scores(started.x_valid)
        s_valid = s_all[:, thick]
        probe.calibration = fit_calibration(s_valid, started.y_valid[:, thick])
        p_valid = probe._calibrated(s_valid)
        probe.thresholds = np.full(len(self.tags), np.inf)
        for tag in self.tags:
            probe.tag_report[tag] = _unmodelled_stats(tag, started.counts[tag], "too_few_examples")
        for c, j in enumerate(thick):
            tag = self.tags[j]
            stats = _gate(
                tag, started.counts[tag], started.y_valid[:, j], p_valid[:, c], self.config
            )
            probe.tag_report[tag] = stats
            probe.thresholds[j] = stats.threshold if stats.enabled else np.inf
        return validation_score(probe, probe._calibrated(s_all), gold)

    def _finish(self, started: _Started | None) -> None:
        """Calibrate and gate every modelled tag, each on one held-out evidence, then refit.

        A tag validation holds enough uses of was fitted on train (``_fit_first``) and is
        judged on validation, unless validation cannot decide it (``_inconclusive``: then
        it is judged out of fold like a thin one, its train fit read by that decision
        only); a thin one is judged out of fold (``_out_of_fold``) and never fitted on
        train alone: no verdict would read that fit (a third of the training time of the
        out-of-fold gate). Every enabled tag is then refitted on train +
        validation; a switched-off thin tag keeps the mean of its fold models, which only
        ``predict_proba`` (AUC reports) reads. Serving the fold mean instead of refitting
        the enabled thin tags saved as much again but cost 0.002-0.004 NDCG@3 on the
        StackExchange sets (2026-12-02).
        """
        if started is None:
            return
        undecided = self._inconclusive(started)
        if undecided.size:
            started = replace(
                started,
                thin=np.union1d(started.thin, undecided),
                thick=np.setdiff1d(started.thick, undecided),
            )
        x_train, x_valid, y_train, y_valid = (
            started.x_train, started.x_valid, started.y_train, started.y_valid
        )  # fmt: skip
        thin, thick, coef, counts, refit = (
            started.thin, started.thick, started.coef, started.counts, started.refit
        )  # fmt: skip
        modelled = list(self.tags)
        x_all = sp.vstack([x_train, x_valid], format="csr") if refit or thin.size else None
        y_oof = np.vstack([y_train, y_valid])[:, thin]
        oof: FloatArray = np.zeros((0, 0))
        if thin.size:
            assert x_all is not None
            oof, fold_coef, fold_intercept = self._out_of_fold(x_all, y_oof)
            if refit:
                coef = _with_columns(coef, thin, _pruned(fold_coef, self.config.prune_below))
                self.intercept[thin] = fold_intercept
        self.coef = coef.tocsr()  # gates judge the model served
        s_valid = self._scores(x_valid)[:, thick]
        # one sigmoid for all tags, fitted on every held-out score the gates read
        finite = np.isfinite(oof)
        self.calibration = fit_calibration(
            np.concatenate([s_valid.ravel(), oof[finite]]),
            np.concatenate([y_valid[:, thick].ravel(), y_oof[finite]]),
        )
        p_valid = self._calibrated(s_valid)
        for c, j in enumerate(thick):
            tag = modelled[j]
            self.tag_report[tag] = _gate(
                tag, counts[tag], y_valid[:, j], p_valid[:, c], self.config
            )
        p_oof: FloatArray = np.zeros((0, 0))
        if thin.size:
            # where a fold's models could not learn a tag (every use held out), its
            # held-out rows rank below any score: the tag showed no skill there
            floor = oof[finite].min() - 1 if finite.any() else 0.0
            p_oof = self._calibrated(np.where(finite, oof, floor))
            for c, j in enumerate(thin):
                tag = modelled[j]
                self.tag_report[tag] = _gate(
                    tag, counts[tag], y_oof[:, c], p_oof[:, c], self.config, "out_of_fold"
                )
        self.thresholds = np.array(
            [
                self.tag_report[t].threshold if self.tag_report[t].enabled else np.inf
                for t in modelled
            ]
        )
        # The refit and the neighbour vote's choice read the gated model and write
        # nothing the other reads (the refit's columns are placed once both are done),
        # so with threads to spare the vote's choice, which has no fits to share out,
        # runs on a core the refit's fits leave idle at times (cooking: 1.3 s of 12).
        refitting = None
        if refit:
            assert x_all is not None
            refitting = partial(self._refitted, x_all, y_train, y_valid)
        refitted = None
        with ThreadPoolExecutor(max_workers=1) as side:
            pending = side.submit(refitting) if refitting and self.config.n_jobs > 1 else None
            if self.config.knn_weights:
                # the validation rows' part of the thin tags' out-of-fold scores
                self._fit_neighbours(started, p_oof[x_train.shape[0] :])
            if pending is not None:
                refitted = pending.result()
            elif refitting is not None:
                refitted = refitting()
        if refitted is not None:
            cols, weights, intercept = refitted
            self.coef = _with_columns(coef, cols, weights).tocsr()
            self.intercept[cols] = intercept

    def _inconclusive(self, started: _Started) -> npt.NDArray[np.intp]:
        """The tags validation judges but cannot decide (``gate_cv_inconclusive``): AUC
        above the bar, interval's lower end below it. Read from the train fits' raw
        scores: the calibration is one increasing function, so it changes no AUC."""
        config = self.config
        if not config.gate_cv_inconclusive or config.gate_cv_folds < 2 or not started.thick.size:
            return np.zeros(0, dtype=np.intp)
        thick = started.thick
        scores = _linear_scores(started.x_valid, started.coef[:, thick], self.intercept[thick])
        undecided = []
        for c, j in enumerate(thick):
            y = started.y_valid[:, j]
            if y.all():  # (no negatives: no AUC; _gate says so)
                continue
            value, low, _ = auc_with_ci(y, scores[:, c], config.ci_level)
            if _auc_verdict(value, low, config.auc_lower_bound) == "undecided":
                undecided.append(j)
        return np.asarray(undecided, dtype=np.intp)

    def _fit_neighbours(self, started: _Started, thin_valid: FloatArray) -> None:
        """Choose on validation how much the neighbour vote orders the recent-tag top-up.

        The top-up ranks the org's recent tags no gate let through (switched off, or too
        new or rare to model) by their recency prior alone; ``(1 - w) · prior + w ·
        vote`` ranks them by how often the messages most like this one carried them too.
        No gate is bypassed: those tags fill the slots below the thresholds as
        ``recent`` suggestions, as before, only in a better order. Validation rows vote
        from train, and tags gated out of fold are ranked on their held-out scores
        (``thin_valid``, the validation rows' part: their served models saw validation).
        The weight with the best hybrid NDCG@3
        wins; ties keep the smaller (0 first).
        """
        assert self.features is not None
        width = len(self.features.word.vocabulary_)
        word_train = started.x_train[:, :width]
        modelled = set(self.tags)
        extra = sorted(
            t for t, st in self.tag_report.items() if t not in modelled and st.reason != "archived"
        )
        self.knn_tags = (*self.tags, *extra)
        y_train = np.hstack([started.y_train, _indicator(started.train_tags, extra)])
        y_valid = np.hstack([started.y_valid, _indicator(started.gold, extra)])
        votes = neighbours.vote(
            started.x_valid[:, :width],
            word_train.T.tocsr(),
            sp.csr_matrix(y_train, dtype=np.float32),
            self.config.knn_k,
        )
        p_valid = self._calibrated(self._scores(started.x_valid))
        if started.thin.size:  # the out-of-fold gate's calibrated scores
            p_valid[:, started.thin] = thin_valid
        scored = []
        for w in (0.0, *self.config.knn_weights):
            self.knn_weight = w
            scored.append((w, validation_score(self, p_valid, started.gold, votes)))
        self.knn_scores = tuple(scored)
        self.knn_weight = max(scored, key=lambda ws: (ws[1], -ws[0]))[0]
        if not self.knn_weight:
            self.knn_tags = ()
            return
        reference = sp.vstack([word_train, started.x_valid[:, :width]], format="csr")
        labels = np.vstack([y_train, y_valid])
        newest = slice(max(0, reference.shape[0] - self.config.knn_reference_max), None)
        self.knn_reference = reference[newest].T.astype(np.float32).tocsr()
        self.knn_labels = sp.csr_matrix(labels[newest], dtype=np.float32)
        self.knn_width = width

    def _out_of_fold(
        self, x_all: sp.csr_matrix, y_all: npt.NDArray[np.bool_]
    ) -> tuple[FloatArray, sp.csc_matrix, FloatArray]:
        """Out-of-fold scores of the tags validation is too thin for, and the mean of
        their fold models.

        A tag used once or twice in the validation window gets an interval too wide to
        clear the bar: it was switched off for want of evidence, not for want of skill
        (most tags of the tweet sets and a third of cooking's were); so, with
        ``gate_cv_inconclusive``, was one validation scored above the bar on too few
        uses to be sure. Here every use of it is held-out evidence: train + validation
        in ``gate_cv_folds`` contiguous blocks, each scored by models fitted on the
        others. A fold whose other blocks hold none (or only) of a tag's uses leaves its
        rows at -inf and stays out of the mean. The fold fits keep
        ``gate_cv_min_negatives``: they only judge, and the tags they let through are
        refitted on everything.
        """
        scores: FloatArray = np.full(y_all.shape, -np.inf)
        coef_sum = _no_columns(x_all.shape[1], y_all.shape[1])
        intercept_sum = np.zeros(y_all.shape[1])
        n_fits = np.zeros(y_all.shape[1])
        fold_config = replace(
            self.config,
            min_negatives=min(self.config.min_negatives, self.config.gate_cv_min_negatives),
        )
        for held in np.array_split(np.arange(len(y_all)), self.config.gate_cv_folds):
            rest = np.ones(len(y_all), dtype=bool)
            rest[held] = False
            n_pos = y_all[rest].sum(axis=0)
            fit = np.flatnonzero((n_pos > 0) & (n_pos < rest.sum()))
            if not fit.size:
                continue
            coef, intercept = fit_tags(x_all[rest], y_all[rest][:, fit], fold_config)
            pruned = _pruned(coef, self.config.prune_below).tocsr()
            scores[np.ix_(held, fit)] = _linear_scores(x_all[held], pruned, intercept)
            coef_sum = coef_sum + _with_columns(_no_columns(*coef_sum.shape), fit, coef)
            intercept_sum[fit] += intercept
            n_fits[fit] += 1
        n = np.maximum(n_fits, 1)
        mean_coef = sp.csc_matrix(coef_sum)
        mean_coef.data /= np.repeat(n.astype(np.float32), np.diff(mean_coef.indptr))
        return scores, mean_coef, np.asarray(intercept_sum / n, dtype=float)

    def _refitted(
        self, x_all: sp.csr_matrix, y_train: npt.NDArray[np.bool_], y_valid: npt.NDArray[np.bool_]
    ) -> tuple[npt.NDArray[np.intp], sp.csc_matrix, FloatArray] | None:
        """The enabled tags refitted on train + valid: (their columns, weights,
        intercepts), or None when no tag is enabled. The gate verdicts and thresholds
        stand.

        The thresholds were tuned on the train-only model; the refit model sees ~10% more
        data, so its scores shift little, while the newest examples help the most.
        Returned rather than placed: ``_finish`` may run the neighbour vote's choice,
        which reads the gated model, at the same time.
        """
        cols = np.flatnonzero([self.tag_report[t].enabled for t in self.tags])
        if not cols.size:
            return None
        y_all = np.vstack([y_train, y_valid])[:, cols]
        weights, intercept = fit_tags(x_all, y_all, self.config, self.config.prune_below)
        return cols, weights, intercept

    # -------------------------------------------------------------- prediction
    def _scores(self, x: sp.csr_matrix) -> FloatArray:
        """Raw per-tag scores (margins or logits) before calibration."""
        return _linear_scores(x, self.coef, self.intercept)

    def _calibrated(self, scores: FloatArray) -> FloatArray:
        a, b = self.calibration
        return np.asarray(expit(a * scores + b), dtype=float)

    def _proba_from_features(self, x: sp.csr_matrix) -> FloatArray:
        return self._calibrated(self._scores(x))

    def predict_proba(self, df: pd.DataFrame) -> FloatArray:
        """Probability of each modelled tag (columns in ``self.tags`` order), gate ignored."""
        if self.features is None or not self.tags:
            return np.zeros((len(df), len(self.tags)))
        return self._proba_from_features(self.features.transform(df))

    def predict_votes(self, df: pd.DataFrame) -> FloatArray | None:
        """The neighbour vote for each of ``knn_tags`` (in that order), or None when the
        model does not use it: what ``rank`` orders the top-up by."""
        if not self.voting or self.features is None:
            return None
        return self._votes_from_features(self.features.transform(df))

    def predict(self, df: pd.DataFrame) -> tuple[FloatArray, FloatArray | None]:
        """``predict_proba`` and ``predict_votes`` from one transform of ``df``: the
        hybrid ranks from both, and transforming twice was the larger part of scoring a
        window for an org with the vote on."""
        if self.features is None or not self.tags:
            return self.predict_proba(df), None
        x = self.features.transform(df)
        votes = self._votes_from_features(x) if self.voting else None
        return self._proba_from_features(x), votes

    def _votes_from_features(self, x: sp.csr_matrix) -> FloatArray:
        assert self.knn_reference is not None and self.knn_labels is not None
        reference, labels = self.knn_reference, self.knn_labels
        return neighbours.vote(x[:, : self.knn_width], reference, labels, self.config.knn_k)

    @property
    def voting(self) -> bool:
        """Whether the neighbour vote orders this model's recent-tag top-up: a weight was
        chosen on validation and its reference ships with the model."""
        return bool(self.knn_weight) and self.knn_reference is not None and bool(self.tags)

    @property
    def active_mask(self) -> npt.NDArray[np.bool_]:
        """Modelled tags the model may suggest: enabled by the gate and not archived."""
        return np.array(
            [self.tag_report[t].enabled and t not in self.archived for t in self.tags],
            dtype=bool,
        )

    def suggest(
        self,
        df: pd.DataFrame,
        k: int | None = None,
        mode: Mode = "hybrid",
        recent: Sequence[str] | None = None,
    ) -> list[list[Suggestion]]:
        """Up to ``k`` suggestions per row of ``df``, best first.

        - ``hybrid`` (production): active tags whose probability clears their own F-beta
          threshold, by probability, then topped up to ``k`` with recent tags.
        - ``model``: the top ``k`` active tags by probability with no threshold, so every
          row gets a full ranking; this is what ranking metrics of the classifier use.
        - ``recent``: the first ``k`` recent tags, the same for every row.

        ``recent`` overrides the list stored at training time (serving passes the live
        one). Archived tags never appear, whatever the mode or the list passed.
        """
        proba, votes = None, None
        if mode == "hybrid":
            proba, votes = self.predict(df)
        elif mode == "model":
            proba = self.predict_proba(df)
        return self.rank(proba, len(df), k=k, mode=mode, recent=recent, votes=votes)

    def rank(
        self,
        proba: FloatArray | None,
        n_rows: int,
        k: int | None = None,
        mode: Mode = "hybrid",
        recent: Sequence[str] | None = None,
        votes: FloatArray | None = None,
    ) -> list[list[Suggestion]]:
        """``suggest`` from probabilities already computed by ``predict_proba``.

        Evaluation ranks one test window in every mode: scoring it once instead of
        once per mode is most of the cost of scoring production in a publish step.
        ``proba`` may be None for ``recent``, which does not read it. ``votes``
        (``predict_votes``) orders the hybrid's top-up; None ranks it by recency alone.
        """
        k = self._check(k, mode)
        lookups = self._lookups(recent)
        if mode == "recent":
            row = [Suggestion(t, 0.0, "recent") for t in lookups.fallback[:k]]
            return [list(row) for _ in range(n_rows)]
        if proba is None or proba.shape != (n_rows, len(self.tags)):
            raise ValueError(f"proba must have shape ({n_rows}, {len(self.tags)}) for {mode}")
        if votes is not None and votes.shape != (n_rows, len(self.knn_tags)):
            raise ValueError(
                f"votes must have shape ({n_rows}, {len(self.knn_tags)}), got {votes.shape}"
            )
        return self._rank(proba, k, mode, lookups, votes)

    def suggest_one(
        self,
        text: str,
        metadata: dict[str, Any] | None = None,
        k: int | None = None,
        mode: Mode = "hybrid",
        recent: Sequence[str] | None = None,
    ) -> list[Suggestion]:
        """``suggest`` for one message (already cleaned), without building a DataFrame.

        The serving path: a request is one message, and the batch path's per-call
        DataFrame and sklearn validation cost ten times the arithmetic. Same answers as
        ``suggest`` on a one-row frame (a test checks it); ``metadata`` holds the
        optional ``network`` / ``message_type``.
        """
        k = self._check(k, mode)
        lookups = self._lookups(recent)
        if mode == "recent":
            return [Suggestion(t, 0.0, "recent") for t in lookups.fallback[:k]]
        proba = np.zeros((1, len(self.tags)))
        if self.features is not None and self.tags:
            columns, weights = self.features.one_row.features(text, metadata or {})
            logits = _row_logits(self.coef, columns, weights)
            proba[0] = self._calibrated(logits + self.intercept)
            if mode == "hybrid" and self.voting:
                assert self.knn_reference is not None and self.knn_labels is not None
                word = [c for c in columns if c < self.knn_width]  # the word block is first
                sims = _row_logits(self.knn_reference, word, weights[: len(word)])
                votes = neighbours.vote_one(sims, self.knn_labels, self.config.knn_k)
                return self._rank(proba, k, mode, lookups, votes.reshape(1, -1))[0]
        return self._rank(proba, k, mode, lookups)[0]

    def _check(self, k: int | None, mode: Mode) -> int:
        """Validated ``k`` (the configured one when None) and ``mode``."""
        k = self.config.k if k is None else k
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if mode not in ("hybrid", "model", "recent"):
            raise ValueError(f"mode must be hybrid, model or recent, got {mode!r}")
        return k

    def _lookups(self, recent: Sequence[str] | None) -> _Lookups:
        """What ranking reads besides the probabilities, for ``recent`` (None: the list
        stored at training time).

        Kept for the stored list, which every serving request uses: built per call it
        was a third of ``suggest_one`` (loops over the org's tags and recent pool). The
        copy is dropped whenever one of the objects it was built from is replaced
        (``archive``, ``with_archived``) and never pickled.
        """
        key: tuple[Any, ...] = (self.config, self.tags, self.tag_report, self.archived)
        key += (self.recent_tags, self.recent_prior, self.knn_tags)
        if recent is None:
            cached = self.__dict__.get("_stored_lookups")
            if cached is not None and all(a is b for a, b in zip(cached.key, key, strict=True)):
                return cast(_Lookups, cached)
        source = self.recent_tags if recent is None else recent
        fallback = [t for t in dict.fromkeys(source) if t not in self.archived]
        active = self.active_mask
        pool = fallback[: self.config.recent_pool]
        column = {t: j for j, t in enumerate(self.tags) if active[j]}
        voted = {t: j for j, t in enumerate(self.knn_tags) if t not in column}
        lookups = _Lookups(
            key=key,
            fallback=fallback,
            active=active,
            pool=pool,
            pool_column=np.array([column.get(t, -1) for t in pool], dtype=np.int64),
            pool_prior=np.array([self.recent_prior.get(t, 0.0) for t in pool]),
            pool_voted=np.array([voted.get(t, -1) for t in pool], dtype=np.int64),
        )
        if recent is None:
            self.__dict__["_stored_lookups"] = lookups
        return lookups

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_stored_lookups", None)  # a cache: rebuilt on first use
        return state

    def _rank(
        self,
        proba: FloatArray,
        k: int,
        mode: Mode,
        lookups: _Lookups,
        votes: FloatArray | None = None,
    ) -> list[list[Suggestion]]:
        """Rows of probabilities → suggestions (``model`` or ``hybrid``; see ``suggest``)."""
        n = proba.shape[0]
        floor = self.thresholds if mode == "hybrid" else np.full(len(self.tags), -np.inf)
        eligible = lookups.active & (proba >= floor)
        top = _top_k(np.where(eligible, proba, -np.inf), k)
        if mode == "model":
            return [
                [Suggestion(self.tags[j], float(proba[i, j]), "model") for j in row if j >= 0]
                for i, row in enumerate(top.tolist())
            ]
        rows: list[list[Suggestion]] = []
        voted = lookups.pool_voted >= 0
        for start in range(0, n, _HYBRID_CHUNK):
            chunk = slice(start, start + _HYBRID_CHUNK)
            prior: FloatArray = np.broadcast_to(
                lookups.pool_prior, (len(proba[chunk]), len(lookups.pool))
            )
            if votes is not None and self.knn_weight and voted.any():
                prior = prior.copy()
                prior[:, voted] = neighbours.blend(
                    prior[:, voted], votes[chunk][:, lookups.pool_voted[voted]], self.knn_weight
                )
            rows += _hybrid_rows(
                proba[chunk], top[chunk], k, self.tags, lookups.pool, lookups.pool_column, prior
            )
        return rows

    # ---------------------------------------------------------------- lifecycle
    def with_archived(self, tags: Iterable[str]) -> TagModel:
        """A copy in which ``tags`` are archived too; shares the fitted arrays (read-only)."""
        archived = self.archived | frozenset(tags)
        report = {
            t: replace(s, enabled=False, reason="archived") if t in archived else s
            for t, s in self.tag_report.items()
        }
        recent = tuple(t for t in self.recent_tags if t not in archived)
        clone = copy.copy(self)
        clone.archived, clone.tag_report, clone.recent_tags = archived, report, recent
        return clone

    def archive(self, tags: Iterable[str]) -> None:
        """Archive ``tags`` in place (see ``with_archived`` for the non-mutating form)."""
        updated = self.with_archived(tags)
        self.archived, self.tag_report = updated.archived, updated.tag_report
        self.recent_tags = updated.recent_tags

    def summary(self) -> dict[str, int]:
        """Counts for logs and model-registry tags: what was seen, modelled, switched on."""
        reasons = Counter(s.reason for s in self.tag_report.values() if not s.enabled)
        out = {
            "n_tags_seen": len(self.tag_report),
            "n_modelled": len(self.tags),
            "n_enabled": sum(s.enabled for s in self.tag_report.values()),
            "n_disabled": sum(reasons.values()),
            "n_recent": len(self.recent_tags),
        }
        for reason in get_args(Reason):
            if reason != "ok":
                out[f"n_disabled_{reason}"] = reasons.get(reason, 0)
        return out


#: Calibration is fitted on at most this many (message, tag) validation pairs.
CALIBRATION_PAIRS = 400_000


def fit_calibration(scores: FloatArray, y: npt.NDArray[np.bool_]) -> tuple[float, float]:
    """One Platt sigmoid for all of an org's tags: (a, b) maximising the likelihood of
    ``y`` under sigmoid(a·score + b) on validation.

    One pair, not one per tag: per-tag sigmoids re-rank tags against each other and
    cost 0.05 NDCG@3 on se_crypto with the SVM; a shared one keeps the ranking and
    only makes the numbers probabilities. Identity when validation has one class only.
    """
    s, t = scores.ravel(), y.ravel()
    if s.size == 0 or t.all() or not t.any():
        return 1.0, 0.0
    if s.size > CALIBRATION_PAIRS:  # a deterministic thinning: every k-th pair
        step = -(-s.size // CALIBRATION_PAIRS)
        s, t = s[::step], t[::step]
        if t.all() or not t.any():
            return 1.0, 0.0
    fit = LogisticRegression(C=1e4).fit(s.reshape(-1, 1), t)
    a = float(fit.coef_[0, 0])
    if not a > 0:  # scores that do not rise with the label: keep them as they are
        return 1.0, 0.0
    return a, float(fit.intercept_[0])


def _pruned(coef: sp.csc_matrix, below: float) -> sp.csc_matrix:
    """``coef`` without the weights under ``below`` in absolute value (0: as it is)."""
    if below <= 0:
        return coef
    out = coef.copy()
    out.data[~kept(out.data, below)] = 0
    out.eliminate_zeros()
    return out


def _no_columns(n_features: int, n_tags: int) -> sp.csc_matrix:
    """An all-zero coefficient matrix, to place fitted tags' columns into."""
    return sp.csc_matrix((n_features, n_tags), dtype=np.float32)


def _with_columns(
    base: sp.csc_matrix, columns: npt.NDArray[np.intp], new: sp.csc_matrix
) -> sp.csc_matrix:
    """``base`` with its ``columns`` replaced by ``new``'s columns, in order."""
    order = np.arange(base.shape[1])
    order[columns] = base.shape[1] + np.arange(len(columns))
    return sp.csc_matrix(sp.hstack([base, new], format="csc")[:, order])


def _linear_scores(x: sp.csr_matrix, coef: Any, intercept: FloatArray) -> FloatArray:
    """``x @ coef + intercept`` in single precision, as the served model computes it."""
    return _dense(x.astype(np.float32) @ coef).astype(float) + intercept


def _dense(matrix: Any) -> npt.NDArray[np.float32]:
    """``matrix`` as a float32 array."""
    dense = matrix.toarray() if sp.issparse(matrix) else matrix
    return np.asarray(dense, dtype=np.float32)


def _row_logits(coef: Any, columns: list[int], weights: FloatArray) -> FloatArray:
    """``weights @ coef[columns]`` for one message's few non-zero features, in float32
    like the batch path's products (``neighbours.weighted_row_sum`` for CSR)."""
    if not columns:
        return np.zeros(coef.shape[1])
    if not sp.issparse(coef):
        return np.asarray(weights.astype(np.float32) @ coef[columns], dtype=float)
    return neighbours.weighted_row_sum(coef, columns, weights.astype(np.float32))


def _top_k(scores: FloatArray, k: int) -> npt.NDArray[np.int64]:
    """Column indices of the ``k`` highest finite scores per row, best first, as an
    (n, min(k, columns)) array: a row with fewer finite scores ends in -1s."""
    n, m = scores.shape
    kk = min(k, m)
    if kk == 0:
        return np.full((n, 0), -1, dtype=np.int64)
    part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    rows = np.arange(n)[:, None]
    order = np.argsort(-scores[rows, part], axis=1, kind="stable")
    best = part[rows, order]
    return np.where(np.isfinite(scores[rows, best]), best, -1).astype(np.int64)


#: Rows ranked at once by ``_hybrid_rows``: a chunk holds rows × recent-pool scores.
_HYBRID_CHUNK = 2048


def _hybrid_rows(
    proba: FloatArray,
    top: npt.NDArray[np.int64],
    k: int,
    tags: Sequence[str],
    pool: Sequence[str],
    pool_column: npt.NDArray[np.int64],
    pool_prior: FloatArray,
) -> list[list[Suggestion]]:
    """Model tags above their thresholds (``top``, best first, as ``_top_k`` gives
    them), merged with the org's recent tags (``pool``).

    Every candidate carries a probability estimate: the classifier's for a model tag
    (and for a recent tag it can score: ``pool_column`` ≥ 0), the recency-weighted prior
    for a recent tag it cannot (not modelled, or switched off by its AUC gate). The best
    ``k`` by that estimate are shown, so a tag nearly every message carries (a
    collection's own hashtag, say) is not lost because its classifier cannot beat its
    base rate, and a below-threshold classifier guess never pushes out a likelier recent
    tag. Ties go to the model tag, then to the earlier one. Sources stay honest:
    ``model`` cleared a tuned threshold, ``recent`` did not.

    Scored as one matrix per chunk of rows: the pool holds up to 1,000 tags, and sorting
    them per row in Python took 0.35 ms a row (0.9 s of scoring cooking's test window).
    """
    n, width = proba.shape[0], k + len(pool)
    above_col = np.full((n, k), -1, dtype=np.int64)
    above_col[:, : top.shape[1]] = top
    above = np.full((n, k), -np.inf)
    held = above_col >= 0
    above[held] = proba[np.nonzero(held)[0], above_col[held]]
    scorable = pool_column >= 0
    recent = np.array(np.broadcast_to(pool_prior, (n, len(pool))), dtype=float)
    recent[:, scorable] = proba[:, pool_column[scorable]]
    for q in range(k):  # a recent tag the model already suggests is not offered twice
        recent[scorable & (pool_column == above_col[:, [q]])] = -np.inf
    candidates = np.hstack([above, recent])  # model tags first: they win ties
    kk = min(k, width)
    cut = np.partition(candidates, width - kk, axis=1)[:, width - kk]
    keep = (candidates >= cut[:, None]) & np.isfinite(candidates)
    rows = []
    for i in range(n):
        idx = np.flatnonzero(keep[i])
        best = idx[np.argsort(-candidates[i, idx], kind="stable")[:k]]
        rows.append(
            [
                Suggestion(tags[above_col[i, c]], float(above[i, c]), "model")
                if c < k
                else Suggestion(pool[c - k], 0.0, "recent")
                for c in best.tolist()
            ]
        )
    return rows

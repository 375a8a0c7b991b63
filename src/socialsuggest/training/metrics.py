"""Ranking and classification metrics for suggestions, small enough to check by hand.

Conventions shared by every ranking metric here (``precision_at_k``, ``recall_at_k``,
``ndcg_at_k``, ``average_precision_at_k``/``map_at_k``, ``hit_rate_at_k``):

- ``gold[i]`` is the set of tags a person applied to message ``i``; ``ranked[i]`` is the
  ranked list we suggested (best first). Duplicates in a ranked list count once, at their
  first position, so a buggy ranker cannot earn credit twice for one tag.
- Rows whose gold set is empty are **excluded** from the average: nothing can be
  relevant there, so every ranking metric is undefined (NDCG's ideal DCG is 0) and
  counting them as 0 would punish a model for the labelling habits of an org. Coverage
  and Hamming loss, which are defined on such rows, do include them.
- When no row is left to average, the result is ``nan`` (not 0), so an empty test set is
  never mistaken for a useless model.
- Precision@k divides by ``k`` even when fewer than ``k`` items were suggested: showing
  fewer suggestions does not make the ones shown count more.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri

if TYPE_CHECKING:
    import pandas as pd

    from socialsuggest.models.tags import Suggestion, TagModel

__all__ = [
    "auc",
    "auc_with_ci",
    "average_precision_at_k",
    "evaluate_model",
    "evaluate_suggestions",
    "f_beta",
    "hamming_loss",
    "hanley_mcneil_se",
    "hit_rate_at_k",
    "map_at_k",
    "mean_tag_auc",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
]

Gold = Sequence[set[str]] | Sequence[frozenset[str]]
Ranked = Sequence[Sequence[str]]
RowMetric = Callable[[AbstractSet[str], list[str], int], float]


def _dedup_top_k(ranked: Sequence[str], k: int) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for item in ranked:
        if item not in seen:
            seen.add(item)
            out.append(item)
            if len(out) == k:
                break
    return out


def _mean_over_labelled(gold: Gold, ranked: Ranked, k: int, row_metric: RowMetric) -> float:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if len(gold) != len(ranked):
        raise ValueError(f"gold has {len(gold)} rows but ranked has {len(ranked)}")
    values = [row_metric(g, _dedup_top_k(r, k), k) for g, r in zip(gold, ranked, strict=True) if g]
    return float(np.mean(values)) if values else math.nan


def _hits(gold: AbstractSet[str], top: list[str]) -> int:
    return sum(1 for t in top if t in gold)


def precision_at_k(gold: Gold, ranked: Ranked, k: int) -> float:
    """Mean share of the top ``k`` slots holding a gold tag (slots left empty count as misses)."""
    return _mean_over_labelled(gold, ranked, k, lambda g, top, kk: _hits(g, top) / kk)


def recall_at_k(gold: Gold, ranked: Ranked, k: int) -> float:
    """Mean share of each row's gold tags found in its top ``k``."""
    return _mean_over_labelled(gold, ranked, k, lambda g, top, _: _hits(g, top) / len(g))


def _dcg(gains: Iterable[bool]) -> float:
    return sum(1.0 / math.log2(i + 2) for i, rel in enumerate(gains) if rel)


def _ndcg_row(g: AbstractSet[str], top: list[str], k: int) -> float:
    ideal = _dcg([True] * min(len(g), k))
    return _dcg(t in g for t in top) / ideal


def ndcg_at_k(gold: Gold, ranked: Ranked, k: int) -> float:
    """Binary-relevance NDCG: DCG of the top ``k`` over the ideal DCG of min(|gold|, k) hits.

    Dividing by min(|gold|, k) rather than |gold| means a row with 5 gold tags can still
    reach 1.0 with a perfect top 3, so the number is comparable across orgs whose people
    tag more or less generously.
    """
    return _mean_over_labelled(gold, ranked, k, _ndcg_row)


def _ap_row(g: AbstractSet[str], top: list[str], k: int) -> float:
    hits = 0
    total = 0.0
    for i, t in enumerate(top):
        if t in g:
            hits += 1
            total += hits / (i + 1)
    return total / min(len(g), k)


def average_precision_at_k(gold: Gold, ranked: Ranked, k: int) -> float:
    """Mean over rows of AP@k = sum of precision@i at each hit i, over min(|gold|, k)."""
    return _mean_over_labelled(gold, ranked, k, _ap_row)


#: MAP@k is the mean of the per-row AP@k, which is what ``average_precision_at_k`` returns.
map_at_k = average_precision_at_k


def hit_rate_at_k(gold: Gold, ranked: Ranked, k: int) -> float:
    """Share of rows with at least one gold tag in the top ``k``.

    The offline stand-in for "the person accepted one of the suggestions": the product
    shows ``k`` chips and one click is a success.
    """
    return _mean_over_labelled(gold, ranked, k, lambda g, top, _: float(_hits(g, top) > 0))


def _as_sets(rows: Any) -> list[frozenset[str]] | None:
    if isinstance(rows, np.ndarray):
        return None
    return [frozenset(r) for r in rows]


def _counts(gold: Any, predicted: Any) -> tuple[int, int, int]:
    """True positives, false positives, false negatives over all (row, label) pairs."""
    gold_sets, pred_sets = _as_sets(gold), _as_sets(predicted)
    if gold_sets is None or pred_sets is None:
        y = np.asarray(gold, dtype=bool)
        p = np.asarray(predicted, dtype=bool)
        if y.shape != p.shape:
            raise ValueError(f"shape mismatch: gold {y.shape} vs predicted {p.shape}")
        return int((y & p).sum()), int((~y & p).sum()), int((y & ~p).sum())
    if len(gold_sets) != len(pred_sets):
        raise ValueError(f"gold has {len(gold_sets)} rows but predicted has {len(pred_sets)}")
    tp = sum(len(g & p) for g, p in zip(gold_sets, pred_sets, strict=True))
    fp = sum(len(p - g) for g, p in zip(gold_sets, pred_sets, strict=True))
    fn = sum(len(g - p) for g, p in zip(gold_sets, pred_sets, strict=True))
    return tp, fp, fn


def f_beta(gold: Any, predicted: Any, beta: float = 2.0) -> float:
    """Micro-averaged F-beta over every (row, label) decision.

    Accepts either binary indicator matrices of equal shape or sequences of label sets.
    beta=2 weighs a missed tag four times a wrong suggestion: a wrong chip costs a glance,
    a missing one costs typing. Returns 0.0 when there is nothing to find and nothing
    predicted (no true positives are possible).
    """
    tp, fp, fn = _counts(gold, predicted)
    b2 = beta * beta
    denom = (1 + b2) * tp + b2 * fn + fp
    return (1 + b2) * tp / denom if denom else 0.0


def hamming_loss(gold: Any, predicted: Any, labels: Iterable[str] | None = None) -> float:
    """Share of (row, label) decisions that are wrong, over the given label universe.

    For label sets, ``labels`` defines the universe (the denominator); when omitted it is
    the union of all gold and predicted labels. Indicator matrices carry their universe
    in their width.
    """
    tp, fp, fn = _counts(gold, predicted)
    if isinstance(gold, np.ndarray):
        cells = gold.size
    else:
        universe = (
            set(labels)
            if labels is not None
            else set().union(*map(set, gold), *map(set, predicted))
        )
        cells = len(gold) * len(universe)
    del tp
    return (fp + fn) / cells if cells else 0.0


#: ``np.unique(scores, return_inverse=True, return_counts=True)``: the distinct scores,
#: each score's group and each group's size. A tag's gate reads them twice (its AUC
#: and its threshold scan) and sorts once.
ScoreGroups = tuple[npt.NDArray[np.float64], npt.NDArray[np.intp], npt.NDArray[np.intp]]


def score_groups(scores: npt.ArrayLike) -> ScoreGroups:
    """The scores' distinct values in ascending order, with inverse and counts."""
    values, group, size = np.unique(
        np.asarray(scores, dtype=float), return_inverse=True, return_counts=True
    )
    return values, group, size


def auc(y_true: npt.ArrayLike, scores: npt.ArrayLike, groups: ScoreGroups | None = None) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count one half); ``groups`` is
    ``score_groups(scores)`` when the caller has it already."""
    y = np.asarray(y_true, dtype=bool)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs at least one positive and one negative example")
    # scipy's rankdata(method="average"), exactly, at a third of its cost: a gate calls
    # this for every tag of every org (1,100 times in one cooking fit)
    _, group, size = groups if groups is not None else score_groups(scores)
    ranks = (np.cumsum(size) - (size - 1) / 2)[group]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def hanley_mcneil_se(auc_value: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUC estimate, Hanley & McNeil (1982), equation 2.

    Uses the exponential-model approximations Q1 = A/(2-A), Q2 = 2A²/(1+A); cheap and
    closed-form, so every tag of every org can be gated without bootstrapping.
    """
    a = auc_value
    q1 = a / (2 - a)
    q2 = 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def auc_with_ci(
    y_true: npt.ArrayLike,
    scores: npt.ArrayLike,
    level: float = 0.95,
    groups: ScoreGroups | None = None,
) -> tuple[float, float, float]:
    """AUC with a normal-approximation confidence interval, clipped to [0, 1].

    The lower bound, not the point estimate, gates a tag: a tag seen 3 times in
    validation with AUC 0.9 has not shown it is better than chance yet.
    Note that the Hanley-McNeil SE is 0 at AUC 1.0 however few the positives.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    y = np.asarray(y_true, dtype=bool)
    value = auc(y, scores, groups)
    n_pos = int(y.sum())
    se = hanley_mcneil_se(value, n_pos, y.size - n_pos)
    z = float(ndtri(0.5 + level / 2))  # norm.ppf without its 60 µs of argument checks
    return value, max(0.0, value - z * se), min(1.0, value + z * se)


def _tags_of(row: Sequence[Suggestion | str]) -> list[str]:
    return [s if isinstance(s, str) else s.tag for s in row]


def evaluate_suggestions(
    gold: Gold,
    suggested: Sequence[Sequence[Suggestion | str]],
    k: int = 3,
    labels: Iterable[str] | None = None,
) -> dict[str, float]:
    """The offline report for one list of suggestions per message.

    Ranking metrics follow the module conventions (empty-gold rows excluded); ``f2`` and
    ``hamming_loss`` treat the top ``k`` as the predicted set; ``hamming_loss`` uses
    ``labels`` as the universe (default: all labels seen in gold or suggestions);
    ``coverage`` is the share of all rows with at least one suggestion. ``ndcg@5`` is
    computed on whatever the list holds when it has fewer than 5 items, and so are
    ``ndcg@3`` and ``hit_rate@3``, which are there whatever ``k``: they are what the model
    gates compare, and a model showing 5 suggestions was otherwise rejected for lacking
    them.
    """
    ranked = [_tags_of(row) for row in suggested]
    top_sets = [frozenset(_dedup_top_k(r, k)) for r in ranked]
    gold_sets = [frozenset(g) for g in gold]
    return {
        "precision@1": precision_at_k(gold_sets, ranked, 1),
        f"precision@{k}": precision_at_k(gold_sets, ranked, k),
        f"recall@{k}": recall_at_k(gold_sets, ranked, k),
        f"ndcg@{k}": ndcg_at_k(gold_sets, ranked, k),
        # the cut every model gate compares (``GateConfig.compared``), whatever ``k``
        "ndcg@3": ndcg_at_k(gold_sets, ranked, 3),
        "ndcg@5": ndcg_at_k(gold_sets, ranked, 5),
        f"map@{k}": map_at_k(gold_sets, ranked, k),
        f"hit_rate@{k}": hit_rate_at_k(gold_sets, ranked, k),
        "hit_rate@3": hit_rate_at_k(gold_sets, ranked, 3),
        "f2": f_beta(gold_sets, top_sets, beta=2.0),
        "hamming_loss": hamming_loss(gold_sets, top_sets, labels),
        "coverage": float(np.mean([bool(r) for r in ranked])) if ranked else math.nan,
    }


def mean_tag_auc(tags: Sequence[str], gold: Gold, proba: npt.NDArray[np.floating[Any]]) -> float:
    """Unweighted mean AUC over the columns of ``proba`` whose tag has both classes in gold."""
    values = []
    for j, tag in enumerate(tags):
        y = np.fromiter((tag in g for g in gold), dtype=bool, count=len(gold))
        if 0 < y.sum() < y.size:
            values.append(auc(y, proba[:, j]))
    return float(np.mean(values)) if values else math.nan


def evaluate_model(
    model: TagModel, test_df: pd.DataFrame, k: int = 3
) -> dict[str, dict[str, float]]:
    """Evaluate the three suggestion modes of a tag model on a test set.

    Returns ``{"model": ..., "recent": ..., "hybrid": ...}``, each from
    ``evaluate_suggestions``; the ``model`` entry also holds ``mean_tag_auc`` (over every
    modelled tag, enabled or not, with both classes in the test set, so it is comparable
    with a model that has no gate) and ``mean_enabled_tag_auc``. Uses the recent-tag list
    stored at training time: the test set plays a period with no new tagging.
    """
    gold = [frozenset(t) for t in test_df["tags"]]
    labels = set(model.tag_report) | set().union(*gold)
    report: dict[str, dict[str, float]] = {}
    proba, votes = model.predict(test_df)  # once: every mode ranks from the same scores
    for mode in ("model", "recent", "hybrid"):
        suggested = model.rank(proba, len(test_df), k=k, mode=mode, votes=votes)
        report[mode] = evaluate_suggestions(gold, suggested, k=k, labels=labels)
    report["model"]["mean_tag_auc"] = mean_tag_auc(model.tags, gold, proba)
    enabled = [j for j, t in enumerate(model.tags) if model.tag_report[t].enabled]
    report["model"]["mean_enabled_tag_auc"] = mean_tag_auc(
        [model.tags[j] for j in enabled], gold, proba[:, enabled]
    )
    return report

"""Ranking and AUC metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from socialsuggest.models.tags import Suggestion
from socialsuggest.training import (
    auc_with_ci,
    average_precision_at_k,
    evaluate_suggestions,
    f_beta,
    hamming_loss,
    hanley_mcneil_se,
    hit_rate_at_k,
    map_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

GOLD = [{"a", "c"}]
RANKED = [["a", "b", "c"]]  # gold tags at ranks 1 and 3


def test_ndcg_two_gold_at_ranks_1_and_3() -> None:
    expected = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(GOLD, RANKED, 3) == pytest.approx(expected)
    assert ndcg_at_k(GOLD, RANKED, 1) == pytest.approx(1.0)
    # at k=2 only "a" is in the top; the ideal still holds 2 hits
    assert ndcg_at_k(GOLD, RANKED, 2) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_ndcg_ideal_uses_min_of_gold_and_k() -> None:
    gold = [{"a", "b", "c", "d", "e"}]
    assert ndcg_at_k(gold, [["a", "b", "c"]], 3) == pytest.approx(1.0)


def test_precision_recall_hit_rate() -> None:
    gold = [{"a", "c"}, {"x"}, {"b"}]
    ranked = [["a", "b", "c"], ["y", "z"], ["b"]]
    assert precision_at_k(gold, ranked, 1) == pytest.approx((1 + 0 + 1) / 3)
    # short lists still divide by k: row 3 has 1 hit in 1 shown slot → 1/3
    assert precision_at_k(gold, ranked, 3) == pytest.approx((2 / 3 + 0 + 1 / 3) / 3)
    assert recall_at_k(gold, ranked, 3) == pytest.approx((1 + 0 + 1) / 3)
    assert recall_at_k(gold, ranked, 1) == pytest.approx((0.5 + 0 + 1) / 3)
    assert hit_rate_at_k(gold, ranked, 3) == pytest.approx(2 / 3)


def test_average_precision() -> None:
    # hits at ranks 1 and 3: (1/1 + 2/3) / min(2, 3)
    assert average_precision_at_k(GOLD, RANKED, 3) == pytest.approx((1 + 2 / 3) / 2)
    gold = [{"a", "c"}, {"q"}]
    ranked = [["a", "b", "c"], ["p", "q"]]
    assert map_at_k(gold, ranked, 3) == pytest.approx(((1 + 2 / 3) / 2 + 0.5) / 2)


def test_empty_gold_rows_are_excluded_and_duplicates_count_once() -> None:
    gold: list[set[str]] = [{"a"}, set()]
    ranked = [["a", "a", "a"], ["a"]]
    assert precision_at_k(gold, ranked, 3) == pytest.approx(1 / 3)
    assert math.isnan(ndcg_at_k([set()], [["a"]], 3))


def test_f_beta_and_hamming_on_sets_and_matrices() -> None:
    gold = [{"a", "b"}, {"c"}]
    pred = [{"a"}, {"c", "d"}]
    tp, fp, fn = 2, 1, 1
    expected = 5 * tp / (5 * tp + 4 * fn + fp)
    assert f_beta(gold, pred, beta=2) == pytest.approx(expected)
    assert f_beta(gold, pred, beta=1) == pytest.approx(2 * tp / (2 * tp + fn + fp))
    assert hamming_loss(gold, pred, labels=["a", "b", "c", "d"]) == pytest.approx(2 / 8)
    y = np.array([[1, 1, 0, 0], [0, 0, 1, 0]])
    p = np.array([[1, 0, 0, 0], [0, 0, 1, 1]])
    assert f_beta(y, p) == pytest.approx(expected)
    assert hamming_loss(y, p) == pytest.approx(2 / 8)


def test_auc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    scores = np.round(y * 0.4 + rng.random(200), 1)  # rounding creates ties
    value, low, high = auc_with_ci(y, scores)
    assert value == pytest.approx(roc_auc_score(y, scores))
    assert low < value < high


@pytest.mark.parametrize("decimals", [1, 2, None])
def test_best_threshold_is_the_best_cut_by_brute_force(decimals: int | None) -> None:
    """The F-beta threshold scan (one sort, ties kept together) against every cut tried
    one by one: predicting score >= cut, the best F2 and the highest cut reaching it."""
    from socialsuggest.models.tags.linear import best_threshold

    rng = np.random.default_rng(decimals or 7)
    for _ in range(20):
        y = rng.random(300) < 0.1
        y[0] = True
        raw = y * 0.3 + rng.random(300)
        scores = np.round(raw, decimals) if decimals is not None else raw
        cut, f2 = best_threshold(y, scores, beta=2.0)
        best = (-1.0, 0.0)
        for c in np.unique(scores):
            predicted = scores >= c
            tp = int((predicted & y).sum())
            fp, fn = int((predicted & ~y).sum()), int((~predicted & y).sum())
            f = 5 * tp / (5 * tp + 4 * fn + fp)
            if f > best[0] or (f == best[0] and c > best[1]):
                best = (f, float(c))
        assert f2 == pytest.approx(best[0])
        assert cut == best[1]


def test_hanley_mcneil_se_by_hand() -> None:
    a, n1, n2 = 0.8, 10, 20
    q1, q2 = 0.8 / 1.2, 2 * 0.64 / 1.8
    var = (0.8 * 0.2 + 9 * (q1 - 0.64) + 19 * (q2 - 0.64)) / 200
    assert hanley_mcneil_se(a, n1, n2) == pytest.approx(math.sqrt(var))
    y = [1] * 3 + [0] * 3
    scores = [0.9, 0.8, 0.3, 0.7, 0.2, 0.1]  # 8 of 9 pairs ordered → AUC 8/9
    value, low, high = auc_with_ci(y, scores, level=0.95)
    se = hanley_mcneil_se(8 / 9, 3, 3)
    assert value == pytest.approx(8 / 9)
    assert low == pytest.approx(max(0.0, 8 / 9 - 1.959964 * se), abs=1e-6)
    assert high == pytest.approx(1.0)  # clipped


def test_auc_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="positive and one negative"):
        auc_with_ci([1, 1], [0.2, 0.3])


def test_evaluate_suggestions_report() -> None:
    gold = [{"a", "c"}, {"b"}, set()]
    suggested = [
        [
            Suggestion("a", 0.9, "model"),
            Suggestion("b", 0.4, "model"),
            Suggestion("c", 0, "recent"),
        ],
        [],
        [Suggestion("a", 0.7, "model")],
    ]
    report = evaluate_suggestions(gold, suggested, k=3, labels=["a", "b", "c"])
    assert report["precision@1"] == pytest.approx(0.5)
    assert report["hit_rate@3"] == pytest.approx(0.5)
    assert report["ndcg@3"] == pytest.approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)) / 2)
    assert report["coverage"] == pytest.approx(2 / 3)
    # predicted sets {a,b,c}, {}, {a} vs {a,c}, {b}, {}: tp 2, fp 2, fn 1
    assert report["f2"] == pytest.approx(10 / (10 + 4 + 2))
    assert report["hamming_loss"] == pytest.approx(3 / 9)

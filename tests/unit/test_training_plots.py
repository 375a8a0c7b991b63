"""The PR curve is thinned for drawing; its average precision is still computed exactly."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve

from socialsuggest.training.plots import pr_curve_points


def test_thinned_curve_keeps_its_ends_and_exact_average_precision() -> None:
    rng = np.random.default_rng(7)
    truth = rng.random(20_000) < 0.1
    scores = np.where(truth, rng.random(20_000) * 0.8 + 0.2, rng.random(20_000))
    full_precision, full_recall, _ = precision_recall_curve(truth, scores)
    assert len(full_recall) > 5_000  # the case the thinning is for

    recall, precision, ap = pr_curve_points(truth, scores, at_most=500)

    assert len(recall) == len(precision) <= 500
    assert (recall[0], precision[0]) == (full_recall[0], full_precision[0])
    assert (recall[-1], precision[-1]) == (full_recall[-1], full_precision[-1])
    assert np.all(np.diff(recall) <= 0)  # still one monotone curve, in sklearn's order
    assert np.isclose(ap, average_precision_score(truth, scores), rtol=0, atol=1e-12)


def test_short_curve_is_drawn_whole() -> None:
    truth = np.array([True, False, True, False])
    scores = np.array([0.9, 0.8, 0.3, 0.1])
    recall, _, _ = pr_curve_points(truth, scores, at_most=500)
    assert len(recall) == len(precision_recall_curve(truth, scores)[1])

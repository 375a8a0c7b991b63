"""Plots people look at instead of reading tables; each is logged to MLflow.

- per-tag AUC with its confidence interval, enabled tags vs switched-off ones, and
  the gate's lower-bound threshold: shows at a glance why a tag is not suggested;
- precision-recall curve of the model's probabilities (micro-averaged over tags);
- hybrid vs its parts on the ranking metrics: the reason the product is hybrid.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: training runs on servers and in CI

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve

from socialsuggest.models.tags import TagModel


def _margins(
    fig: Figure, *, left_chars: int, bottom_in: float, top_in: float, tick_pt: float = 7
) -> None:
    """Fixed margins from the longest y tick label, instead of ``tight_layout``.

    ``tight_layout`` lays the figure out by measuring every text it holds, once more
    than the save does; the three plots are drawn for every org at every retrain. Fixed
    margins took them from 0.63 to 0.56 s for a StackExchange model and 0.66 to 0.59 s
    for a tweet one (2026-12-03). Labels are sized at 0.6 em a character.
    """
    width, height = fig.get_size_inches()
    label_in = left_chars * tick_pt * 0.6 / 72 + 0.45  # labels, tick marks, axis label
    fig.subplots_adjust(
        left=min(0.6, label_in / width),
        right=1 - 0.2 / width,
        bottom=bottom_in / height,
        top=1 - top_in / height,
    )


def plot_tag_auc(model: TagModel, path: Path, *, max_tags: int = 40) -> Path:
    stats = [s for s in model.tag_report.values() if not math.isnan(s.auc)]
    stats.sort(key=lambda s: (-s.n_pos, s.tag))
    stats = sorted(stats[:max_tags], key=lambda s: s.auc)
    height = max(2.5, 0.22 * len(stats) + 1)
    fig, ax = plt.subplots(figsize=(7, height))
    labels = [f"{s.tag} (n={s.n_pos})" for s in stats]
    _margins(fig, left_chars=max(map(len, labels), default=0), bottom_in=0.75, top_in=0.4)
    if stats:
        y = np.arange(len(stats))
        auc = np.array([s.auc for s in stats])
        low = auc - np.array([s.ci_low for s in stats])
        high = np.array([s.ci_high for s in stats]) - auc
        colours = np.array(["tab:green" if s.enabled else "tab:red" for s in stats])
        ax.errorbar(auc, y, xerr=[low, high], fmt="none", ecolor="grey", capsize=2)
        for evidence, marker in (("validation", "o"), ("out_of_fold", "s")):
            on = np.array([s.evidence == evidence for s in stats])
            ax.scatter(auc[on], y[on], c=colours[on], marker=marker, zorder=3, s=18)
        ax.set_yticks(y, labels, fontsize=7)
    ax.axvline(model.config.auc_lower_bound, color="tab:red", linestyle="--", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel(
        f"held-out AUC with {model.config.ci_level:.0%} CI (green: enabled, red: switched off;"
        "\n● on validation, ■ out-of-fold on train + validation)"
    )
    ax.set_title(f"Per-tag AUC, {len(stats)} most frequent modelled tags")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# A curve has one point per distinct score over test messages x tags (~10^5 at a large
# org); drawing them all cost a second per candidate at publish and shows nothing more.
_MAX_CURVE_POINTS = 1000


def _evenly_spaced(n: int, at_most: int) -> np.ndarray:
    """Indices of at most ``at_most`` points spread over ``n``, always keeping both ends."""
    if n <= at_most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, at_most).round().astype(int))


def pr_curve_points(
    truth: np.ndarray, scores: np.ndarray, *, at_most: int = _MAX_CURVE_POINTS
) -> tuple[np.ndarray, np.ndarray, float]:
    """Recall, precision (thinned to ``at_most`` points) and average precision (exact)."""
    precision, recall, _ = precision_recall_curve(truth, scores)
    # the step-wise sum sklearn's average_precision_score uses, over every point
    ap = float(-np.sum(np.diff(recall) * precision[:-1]))
    keep = _evenly_spaced(len(recall), at_most)
    return recall[keep], precision[keep], ap


def plot_pr_curve(model: TagModel, test: pd.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 4))
    _margins(fig, left_chars=4, bottom_in=0.55, top_in=0.35, tick_pt=10)
    if model.tags and len(test):
        proba = model.predict_proba(test)
        gold = [set(t) for t in test["tags"]]
        truth = np.array([[tag in g for tag in model.tags] for g in gold], dtype=bool)
        if truth.any():
            recall, precision, ap = pr_curve_points(truth.ravel(), proba.ravel())
            ax.plot(recall, precision, color="tab:blue", label=f"AP = {ap:.3f}")
            ax.legend(loc="lower left")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall on test (micro over tags)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_modes(metrics: dict[str, dict[str, float]], path: Path) -> Path:
    names = ["precision@1", "ndcg@3", "hit_rate@3"]
    modes = [m for m in ("recent", "model", "hybrid") if m in metrics]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    _margins(fig, left_chars=4, bottom_in=0.35, top_in=0.35, tick_pt=10)
    width = 0.8 / max(1, len(modes))
    x = np.arange(len(names))
    for i, mode in enumerate(modes):
        values = [metrics[mode].get(n, float("nan")) for n in names]
        bars = ax.bar(x + i * width, values, width, label=mode)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x + width * (len(modes) - 1) / 2, names)
    ax.set_ylim(0, 1.05)
    ax.legend()
    ax.set_title("Hybrid vs its parts (test window)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def training_plots(
    model: TagModel, test: pd.DataFrame, metrics: dict[str, dict[str, float]], folder: Path
) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "tag_auc": plot_tag_auc(model, folder / "tag_auc.png"),
        "pr_curve": plot_pr_curve(model, test, folder / "pr_curve.png"),
        "modes": plot_modes(metrics, folder / "hybrid_vs_parts.png"),
    }

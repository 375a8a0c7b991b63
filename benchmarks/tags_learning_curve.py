"""How much does more training data still buy? The learning curve of our tag model.

Why: the daily cycle fits an org on its newest ``TagModelConfig.max_examples``
(``processing.splits.newest``), because without a cap the largest orgs bound the whole
cycle. A cap costs accuracy only if more data still helps at that size. The benchmark
corpora are smaller than any sensible cap (12.4k examples at most), so this measures
the slope where it can: each data set's training part cut to its newest 1/8, 1/4, 1/2
and all of it (validation and test as in ``tags_accuracy.py``, so the points differ
only in how much history the model saw), and the NDCG@3 gained per doubling between
the two largest points. On a log-linear curve the gain per doubling falls as data
grows, so the last doubling measured bounds what one more doubling above it buys.

It also measures training seconds per point: how a fit's cost grows with its examples
(the exponent ``b`` of ``seconds = a * examples ** b``), which is what the cap bounds.

Usage: python benchmarks/tags_learning_curve.py [--datasets cooking ...] [--out FILE]
Writes ``benchmarks/reports/tags_learning_curve.md`` and ``.png``; logs both to MLflow
when ``MLFLOW_TRACKING_URI`` names a server.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from common import log_report, machine
from socialsuggest.config import load_settings
from socialsuggest.models.tags import TagModel, TagModelConfig
from socialsuggest.training import evaluate_model
from tags_accuracy import DATASETS, REPORTS, load

FRACTIONS = (0.125, 0.25, 0.5, 1.0)


def curve(name: str, root: Path, config: TagModelConfig) -> list[dict[str, float]]:
    """One point per fraction: examples, seconds, hybrid and model NDCG@3."""
    train, valid, test = load(name, root)
    points = []
    for fraction in FRACTIONS:
        part = train.iloc[len(train) - round(len(train) * fraction) :].reset_index(drop=True)
        started = time.perf_counter()
        model = TagModel.fit(part, valid, config)
        seconds = time.perf_counter() - started
        report = evaluate_model(model, test, k=config.k)
        points.append(
            {
                "examples": float(len(part)),
                "seconds": seconds,
                "hybrid": report["hybrid"]["ndcg@3"],
                "model": report["model"]["ndcg@3"],
                "enabled": float(model.summary()["n_enabled"]),
            }
        )
        print(
            f"{name}: {len(part):>6} examples  {seconds:6.1f}s  "
            f"NDCG@3 hybrid {points[-1]['hybrid']:.3f}  model {points[-1]['model']:.3f}",
            flush=True,
        )
    return points


def per_doubling(points: list[dict[str, float]], key: str) -> float:
    """NDCG@3 gained by the last doubling measured (the two largest points)."""
    a, b = points[-2], points[-1]
    return (b[key] - a[key]) / math.log2(b["examples"] / a["examples"])


def cost_exponent(points: list[dict[str, float]]) -> float:
    """``b`` in seconds = a * examples ** b, least squares in log-log."""
    x = np.log([p["examples"] for p in points])
    y = np.log([p["seconds"] for p in points])
    return float(np.polyfit(x, y, 1)[0])


def plot(curves: dict[str, list[dict[str, float]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (acc, cost) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, points in curves.items():
        n = [p["examples"] for p in points]
        (line,) = acc.plot(n, [p["hybrid"] for p in points], marker="o", label=f"{name} hybrid")
        acc.plot(n, [p["model"] for p in points], marker="x", linestyle="--",
                 color=line.get_color(), label=f"{name} model")  # fmt: skip
        cost.plot(n, [p["seconds"] for p in points], marker="o", label=name)
    acc.set(xscale="log", xlabel="training examples (newest, log)", ylabel="NDCG@3 (test)")
    acc.set_title("Learning curve: NDCG@3 vs training examples")
    cost.set(xscale="log", yscale="log", xlabel="training examples (log)",
             ylabel="fit seconds (log)")  # fmt: skip
    cost.set_title("Fit time vs training examples")
    for ax in (acc, cost):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--out", type=Path, default=REPORTS / "tags_learning_curve.md")
    args = parser.parse_args()
    root = load_settings().resolved_datasets_dir / "tags"
    config = TagModelConfig()
    started = time.perf_counter()
    curves = {name: curve(name, root, config) for name in args.datasets}
    fractions = " | ".join(f"{f:g}" for f in FRACTIONS)
    rows, metrics = [], {}
    for name, points in curves.items():
        gain = {key: per_doubling(points, key) for key in ("hybrid", "model")}
        b = cost_exponent(points)
        cells = " | ".join(f"{p['hybrid']:.3f}" for p in points)
        rows.append(
            f"| {name} | {int(points[-1]['examples']):,} | {cells} | {gain['hybrid']:+.3f} "
            f"| {gain['model']:+.3f} | {points[-1]['seconds']:.1f} | {b:.2f} |"
        )
        metrics |= {f"{name}.per_doubling.hybrid": gain["hybrid"], f"{name}.cost_b": b}
    detail = [
        f"| {name} | {int(p['examples']):,} | {p['seconds']:.1f} | {p['hybrid']:.3f} "
        f"| {p['model']:.3f} | {int(p['enabled'])} |"
        for name, points in curves.items()
        for p in points
    ]
    lines = [
        "# Learning curve of the tag model (what the per-org example cap can cost)",
        "",
        f"- machine: {machine()}",
        f"- command: `{' '.join(['python benchmarks/tags_learning_curve.py', *sys.argv[1:]])}`",
        f"- total runtime: {time.perf_counter() - started:.0f} s",
        "- what: see the script's docstring. The default model, one thread (`n_jobs=1`, as",
        "  the daily cycle fits each org), trained on the newest share of each data set's",
        "  training part; validation and test are the same for every point. NDCG@3 on the",
        "  test split. *per doubling*: NDCG@3 gained from the second-largest to the",
        "  largest point, per doubling of examples. *cost b*: fit seconds grow as",
        "  examples^b over the four points.",
        "",
        f"| data | all train examples | hybrid NDCG@3 at share {fractions} | per doubling "
        "(hybrid) | per doubling (model) | fit s (all) | cost b |",
        "|---|---|" + "---|" * len(FRACTIONS) + "---|---|---|---|",
        *rows,
        "",
        "## Every point",
        "",
        "| data | train examples | fit s | hybrid NDCG@3 | model NDCG@3 | tags enabled |",
        "|---|---|---|---|---|---|",
        *detail,
        "",
    ]
    args.out.write_text("\n".join(lines))
    png = args.out.with_suffix(".png")
    plot(curves, png)
    print(f"report: {args.out}")
    log_report("tags-learning-curve", args.out, [png], metrics)


if __name__ == "__main__":
    main()

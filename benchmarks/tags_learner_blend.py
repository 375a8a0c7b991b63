"""Experiment: does averaging our two learners' probabilities beat the better of them?

Why: ``TagModelConfig.choose_learner`` keeps one of two learners per org (the L2-loss
SVM over stemmed words and char n-grams, or the logistic words model:
``models/tags/choice.py``) and drops the other, and the issue names "ensembling with a
second fast learner" as a lever. Both learners are already fitted halfway when the
choice is made, so serving their average would cost the second learner's out-of-fold
gate and refit, not a new kind of model.

What it measures, per data set (the splits of ``tags_accuracy.py``; ``--split dev`` by
default, the window to tune on, so test.ft stays unread):

* each learner alone, finished as the daily cycle finishes it (its own gates,
  thresholds and refit; ``choose_learner`` off), in model mode (top 3 enabled tags);
* blends ``w * p_svm + (1 - w) * p_logistic`` over the tags either learner enabled: a
  tag enabled by both gets the weighted mean, a tag enabled by one keeps that one's
  probability (both are calibrated to probabilities on the same validation window).

The weight an org would get is the one with the best NDCG@3 on validation, scored by
the two learners fitted on train only (``refit_on_valid=False``), and the evaluated
column is what that choice scores; *best* is the best weight on the evaluated window
itself, an optimistic bound. Train s is both learners' fits as served: the blend's
training cost. One thread (``n_jobs=1``): the numbers repeat. Writes
``benchmarks/reports/tags_learner_blend.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from common import machine
from socialsuggest.config import load_settings
from socialsuggest.models.tags import TagModel, TagModelConfig
from socialsuggest.models.tags.choice import CONFIGURED, LOGISTIC_WORDS, candidates
from socialsuggest.training import evaluate_suggestions
from tags_accuracy import DATASETS, load

REPORTS = Path(__file__).parent / "reports"
#: weight of the configured learner (the SVM); 1 = the SVM alone, 0 = logistic alone
WEIGHTS = (1.0, 0.8, 0.65, 0.5, 0.35, 0.2, 0.0)
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def served_scores(
    model: TagModel, df: pd.DataFrame, column: dict[str, int]
) -> tuple[FloatArray, BoolArray]:
    """The model's probabilities in the shared tag columns, and which tags it enabled."""
    out, enabled = np.zeros((len(df), len(column))), np.zeros(len(column), dtype=bool)
    proba, active = model.predict_proba(df), model.active_mask
    for j, t in enumerate(model.tags):
        out[:, column[t]] = proba[:, j]
        enabled[column[t]] = bool(active[j])
    return out, enabled


def blend(w: float, a: tuple[FloatArray, BoolArray], b: tuple[FloatArray, BoolArray]) -> FloatArray:
    """``w * a + (1 - w) * b`` where both enabled a tag; the one that did elsewhere;
    -inf where neither did (never suggested). w=1 is ``a`` alone, w=0 ``b`` alone."""
    (pa, ea), (pb, eb) = a, b
    if w in (0.0, 1.0):
        p, e = (pa, ea) if w == 1.0 else (pb, eb)
        return np.where(e, p, -np.inf)
    both = np.where(ea & eb, w * pa + (1 - w) * pb, np.where(ea, pa, pb))
    return np.where(ea | eb, both, -np.inf)


def ndcg3(scores: FloatArray, tags: list[str], gold: list[frozenset[str]]) -> float:
    top = np.argsort(-scores, axis=1)[:, :3]
    ranked = [[tags[j] for j in row if np.isfinite(scores[i, j])] for i, row in enumerate(top)]
    return evaluate_suggestions(gold, ranked, k=3)["ndcg@3"]


def run(name: str, root: Path, split: str) -> str:
    train, valid, test = load(name, root, split)
    learners = candidates(TagModelConfig(n_jobs=1))
    tags = sorted({t for rows in (train["tags"], valid["tags"]) for ts in rows for t in ts})
    column = {t: j for j, t in enumerate(tags)}
    on_valid, on_test, seconds = {}, {}, 0.0
    for key in (CONFIGURED, LOGISTIC_WORDS):
        judged = TagModel.fit(train, valid, replace(learners[key], refit_on_valid=False))
        started = time.perf_counter()
        served = TagModel.fit(train, valid, learners[key])
        seconds += time.perf_counter() - started
        on_valid[key] = served_scores(judged, valid, column)
        on_test[key] = served_scores(served, test, column)
    gold_valid = [frozenset(t) for t in valid["tags"]]
    gold_test = [frozenset(t) for t in test["tags"]]
    scored = [
        (w, ndcg3(blend(w, on_valid[CONFIGURED], on_valid[LOGISTIC_WORDS]), tags, gold_valid),
         ndcg3(blend(w, on_test[CONFIGURED], on_test[LOGISTIC_WORDS]), tags, gold_test))
        for w in WEIGHTS
    ]  # fmt: skip
    alone = max(scored[0][2], scored[-1][2])  # the better learner alone, on this window
    chosen = max(scored, key=lambda s: s[1])
    best = max(scored, key=lambda s: s[2])
    cells = " | ".join(f"{t:.4f}" for _, _, t in scored)
    row = (
        f"| {name} | {cells} | w={chosen[0]:g} | **{chosen[2]:.4f}** | {chosen[2] - alone:+.4f} "
        f"| w={best[0]:g}: {best[2] - alone:+.4f} | {seconds:.1f} |"
    )
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    parser.add_argument("--out", type=Path, default=REPORTS / "tags_learner_blend.md")
    args = parser.parse_args()
    root = load_settings().resolved_datasets_dir / "tags"
    started = time.perf_counter()
    rows = [run(name, root, args.split) for name in args.datasets]
    weights = " | ".join(f"w={w:g}" for w in WEIGHTS)
    window = "dev window (newest 20% of train.ft)" if args.split == "dev" else "test.ft"
    lines = [
        "# Experiment: the two learners' probabilities averaged",
        "",
        f"- machine: {machine()}",
        f"- command: `{' '.join(['python benchmarks/tags_learner_blend.py', *sys.argv[1:]])}`",
        f"- total runtime: {time.perf_counter() - started:.0f} s",
        f"- what: see the script's docstring. NDCG@3 (model mode) on the {window} for",
        "  each weight w of the SVM learner (w=1: the SVM alone, w=0: the logistic words",
        "  learner alone); *chosen* = the weight with the best validation NDCG@3 (what an",
        "  org would get), Δ its gain over the better learner alone; *best* = the best",
        "  weight on the evaluated window itself (optimistic); train s = both learners'",
        "  served fits, one thread (what the blend would cost to train).",
        "",
        f"| data | {weights} | chosen on validation | its NDCG@3 | Δ | best | train s |",
        "|---|" + "---|" * len(WEIGHTS) + "---|---|---|---|---|",
        *rows,
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"report: {args.out}")


if __name__ == "__main__":
    main()

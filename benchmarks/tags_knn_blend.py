"""Experiment: does a k-nearest-neighbour vote, blended into our tag model's scores, help?

Why: on the tweet sets we trail (tw_covid19: the sklearn baseline, tw_grammys: Annif
omikuji), and the issue names "ensembling with a second fast learner" as a lever. A kNN
vote is the cheapest second learner there is (one sparse product with the org's
messages, no fit), and tweets repeat each other (news shared many times), which a
per-tag linear model only partly exploits. It also scores tags too rare to be modelled.

What it measures, per data set (the splits of ``tags_accuracy.py``):

* our model (default config, model mode), as the daily cycle fits it;
* the kNN vote alone: cosine over word 1-2-gram TF-IDF (sublinear tf), the ``K``
  most similar earlier messages, each tag scored by the similarity-weighted share of
  neighbours carrying it;
* blends ``(1 - w) * p_model + w * p_knn`` for a grid of ``w``; the weight an org would
  get is the one with the best NDCG@3 on validation (scores of a model fitted on train
  only, neighbours from train), and the test column is what that choice scores.

``--vote-tags`` says which tags the vote may score: ``all`` (every tag of train +
validation), ``modelled`` (the tags our model fits, gated on or off) or ``active`` (the
ones its gates let through). The 2026-12-06 runs of the three located the gain in tags
the gates switch off, so ``TagModel`` does not blend the vote into its scores: it orders
the hybrid's recent-tag top-up with it (``TagModelConfig.knn_weights``), and
``tags_accuracy.py`` measures that. Writes ``benchmarks/reports/tags_knn_blend.md``.
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
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from common import machine
from socialsuggest.config import load_settings
from socialsuggest.models.tags import TagModel, TagModelConfig
from socialsuggest.training import evaluate_suggestions
from tags_accuracy import DATASETS, load

REPORTS = Path(__file__).parent / "reports"
WEIGHTS = (0.0, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0)
VOTE_TAGS = ("all", "modelled", "active")
FloatArray = npt.NDArray[np.float64]


def knn_vote(
    query: sp.csr_matrix, reference: sp.csr_matrix, labels: FloatArray, k: int
) -> FloatArray:
    """Similarity-weighted share of the ``k`` nearest reference rows carrying each tag."""
    sims = (query @ reference.T).toarray()
    if k < sims.shape[1]:
        keep = np.argpartition(-sims, k, axis=1)[:, :k]
        mask = np.zeros(sims.shape, dtype=bool)
        np.put_along_axis(mask, keep, True, axis=1)
        sims = np.where(mask, sims, 0.0)
    total = sims.sum(axis=1, keepdims=True)
    total[total == 0] = 1.0
    return (sims @ labels) / total


def ndcg3(scores: FloatArray, tags: list[str], gold: list[frozenset[str]]) -> float:
    top = np.argsort(-scores, axis=1)[:, :5]
    return evaluate_suggestions(gold, [[tags[j] for j in row] for row in top], k=3)["ndcg@3"]


def run(name: str, root: Path, ks: list[int], vote_tags: str = "all") -> list[str]:
    train, valid, test = load(name, root)
    tags = sorted({t for rows in (train["tags"], valid["tags"]) for ts in rows for t in ts})
    column = {t: j for j, t in enumerate(tags)}

    def indicator(df: pd.DataFrame) -> FloatArray:
        y = np.zeros((len(df), len(tags)))
        for i, row in enumerate(df["tags"]):
            for t in row:
                y[i, column[t]] = 1.0
        return y

    def model_scores(model: TagModel, df: pd.DataFrame) -> FloatArray:
        out = np.zeros((len(df), len(tags)))
        proba, active = model.predict_proba(df), model.active_mask
        for j, t in enumerate(model.tags):
            if active[j]:
                out[:, column[t]] = proba[:, j]
        return out

    config = TagModelConfig(n_jobs=1, knn_weights=())  # the model alone: no top-up vote
    judged = TagModel.fit(train, valid, replace(config, refit_on_valid=False))
    served = TagModel.fit(train, valid, config)
    gold_valid = [frozenset(t) for t in valid["tags"]]
    gold_test = [frozenset(t) for t in test["tags"]]
    p_valid, p_test = model_scores(judged, valid), model_scores(served, test)
    votable = np.ones(len(tags), dtype=bool)
    if vote_tags != "all":
        votable[:] = False
        for j, t in enumerate(served.tags):
            votable[column[t]] = vote_tags == "modelled" or bool(served.active_mask[j])
    earlier = pd.concat([train, valid], ignore_index=True)
    on_train = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(train["text"])
    on_both = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(earlier["text"])
    rows = []
    for k in ks:
        started = time.perf_counter()
        v_valid = knn_vote(
            on_train.transform(valid["text"]), on_train.transform(train["text"]),
            indicator(train), k,
        )  # fmt: skip
        v_test = knn_vote(
            on_both.transform(test["text"]), on_both.transform(earlier["text"]),
            indicator(earlier), k,
        )  # fmt: skip
        v_valid, v_test = v_valid * votable, v_test * votable
        seconds = time.perf_counter() - started
        scored = [
            (w, ndcg3((1 - w) * p_valid + w * v_valid, tags, gold_valid),
             ndcg3((1 - w) * p_test + w * v_test, tags, gold_test))
            for w in WEIGHTS
        ]  # fmt: skip
        chosen = max(scored, key=lambda s: s[1])
        cells = " | ".join(f"{t:.4f}" for _, _, t in scored)
        rows.append(
            f"| {name} | {vote_tags} | {k} | {cells} | w={chosen[0]} | **{chosen[2]:.4f}** "
            f"| {chosen[2] - scored[0][2]:+.4f} | {seconds:.1f} |"
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--k", nargs="+", type=int, default=[30, 100])
    parser.add_argument("--vote-tags", nargs="+", default=["all"], choices=VOTE_TAGS)
    parser.add_argument("--out", type=Path, default=REPORTS / "tags_knn_blend.md")
    args = parser.parse_args()
    root = load_settings().resolved_datasets_dir / "tags"
    started = time.perf_counter()
    rows = [
        row
        for name in args.datasets
        for vote_tags in args.vote_tags
        for row in run(name, root, args.k, vote_tags)
    ]
    weights = " | ".join(f"w={w}" for w in WEIGHTS)
    lines = [
        "# Experiment: a kNN vote blended into the tag model's scores",
        "",
        f"- machine: {machine()}",
        f"- command: `{' '.join(['python benchmarks/tags_knn_blend.py', *sys.argv[1:]])}`",
        f"- total runtime: {time.perf_counter() - started:.0f} s",
        "- what: see the script's docstring. Test NDCG@3 (model mode, 3 suggestions) for",
        "  each blend weight w (w=0 is our model alone, w=1 the kNN vote alone); *chosen*",
        "  is the weight with the best validation NDCG@3 (an org would get that one), Δ its",
        "  test gain over w=0; kNN s = building both votes (valid + test).",
        "",
        f"| data | vote tags | K | {weights} | chosen on validation | its test NDCG@3 "
        "| Δ | kNN s |",
        "|---|---|---|" + "---|" * len(WEIGHTS) + "---|---|---|---|",
        *rows,
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"report: {args.out}")


if __name__ == "__main__":
    main()

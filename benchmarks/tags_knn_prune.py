"""Experiment: the neighbour vote's reference without its most common words.

Why: the serving report (2026-12-06) lost ~10% of its throughput and gained ~0.9 MiB per
org when the neighbour vote came in. A request's vote gathers, for each of its words, the
list of reference messages that contain it: a word in most messages costs a list as long
as the reference (up to ``knn_reference_max`` = 20,000), yet weighs little in a TF-IDF
cosine. This drops from a fitted model's reference the words more than a share of its
messages contain, and measures per corpus (the splits of ``tags_accuracy.py``, default
config, one thread): ``suggest_one`` time over test messages with the vote off, as
served and pruned; hybrid NDCG@3 on the test split; the reference's size.

The fitted weight of the vote is kept (it was chosen on the unpruned reference), so
this measures what pruning a served model would do, not a refit with pruning. Writes
``benchmarks/reports/tags_knn_prune.md``.

Finding (two runs, 2026-12-06): NDCG@3 held within 0.0003 and the reference shrank
10-15% at 10%, but the time differences stayed inside the run-to-run noise (one cell
0.33 ms in one run, 0.57 in the next), while the vote itself added 0.15-0.38 ms a call:
the common words are not where the vote's serving time goes.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from common import machine, say
from socialsuggest.config import load_settings
from socialsuggest.models.tags import TagModel, TagModelConfig
from socialsuggest.training import evaluate_model
from tags_accuracy import DATASETS, load

REPORT = Path(__file__).parent / "reports" / "tags_knn_prune.md"


def pruned(reference_t: sp.csr_matrix, share: float) -> sp.csr_matrix:
    """``reference_t`` (words x messages) without the words in more than ``share`` of
    the messages."""
    df = np.diff(reference_t.indptr)
    keep = (df <= share * reference_t.shape[1]).astype(np.float32)
    out = sp.csr_matrix(sp.diags(keep) @ reference_t)
    out.eliminate_zeros()
    return out


def ms_per_message(model: TagModel, texts: list[str]) -> float:
    """Mean ``suggest_one`` time (the serving path), after one warm-up call: a model's
    first call is slower (it builds the cached ranking lookups, among other things; 6 ms
    against 0.4 ms after it on a fresh fit of tw_covid19)."""
    model.suggest_one(texts[0])
    started = time.perf_counter()
    for text in texts:
        model.suggest_one(text)
    return (time.perf_counter() - started) / len(texts) * 1000


def measure(name: str, root: Path, shares: list[float], n_texts: int) -> list[str]:
    train, valid, test = load(name, root)
    model = TagModel.fit(train, valid, replace(TagModelConfig(), n_jobs=1))
    if not model.voting or model.knn_reference is None:
        return [f"| {name} | vote off (weight 0 chosen on validation) | | | | |"]
    texts = [str(t) for t in test["text"]][:n_texts]
    served, weight = model.knn_reference, model.knn_weight
    rows = []
    for share in [1.0, *shares]:
        model.knn_reference = served if share == 1.0 else pruned(served, share)
        ndcg = evaluate_model(model, test)["hybrid"]["ndcg@3"]
        ms = ms_per_message(model, texts)
        mib = (model.knn_reference.data.nbytes + model.knn_reference.indices.nbytes) / 2**20
        label = "as served" if share == 1.0 else f"words in > {share:.0%} of messages dropped"
        rows.append(f"| {name} | {label} | {ms:.2f} | {ndcg:.4f} | {mib:.2f} | {weight} |")
        say(rows[-1])
    model.knn_reference, model.knn_weight = served, 0.0
    off = evaluate_model(model, test)["hybrid"]["ndcg@3"]
    rows.append(f"| {name} | vote off | {ms_per_message(model, texts):.2f} | {off:.4f} | – | 0 |")
    say(rows[-1])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--shares", nargs="+", type=float, default=[0.2, 0.1, 0.05, 0.02])
    parser.add_argument("--texts", type=int, default=1500, help="test messages timed")
    parser.add_argument("--out", type=Path, default=REPORT)
    args = parser.parse_args()
    root = load_settings().resolved_datasets_dir / "tags"
    started = time.perf_counter()
    rows = [row for name in args.datasets for row in measure(name, root, args.shares, args.texts)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        "# The neighbour vote's reference without its most common words\n\n"
        f"- machine: {machine()}\n"
        f"- command: `{' '.join(['python benchmarks/tags_knn_prune.py', *sys.argv[1:]])}`"
        f"\n- date: {time.strftime('%Y-%m-%d')}; runtime {time.perf_counter() - started:.0f} s\n"
        "- one thread; each corpus's model fitted once with the default config, its "
        "reference then pruned in place (the vote's weight, chosen on the unpruned one, "
        f"kept); `suggest_one` timed once over the first {args.texts} test messages, in one "
        "process: compare cells within a run, and rerun to see the noise (two runs on "
        "2026-12-06 differed by up to 1.7x in one cell); NDCG@3 = hybrid on the test split."
        "\n\n"
        "| data | reference | suggest_one ms | hybrid NDCG@3 | reference MiB | vote weight |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    say(f"report: {args.out}")


if __name__ == "__main__":
    main()

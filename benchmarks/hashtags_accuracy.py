"""Hashtag suggestion on the tweet collections: hide a post's hashtags, find them again.

Each collection (../shared/datasets/tags/tw_*) is one org's posts: the fixed splits of
the dataset README, hashtags as labels (stripped from the text). For every test post:

* ``hidden``: the draft is the text alone; every hashtag is hidden;
* ``one_given``: posts with 2+ hashtags show their first one and hide the rest.

Methods, scored by the same metric functions: our embedding model (hybrid = the
endpoint; content, co-occurrence and popular alone), a TF-IDF 1-2 gram + OneVsRest
LogisticRegression(C=10) multi-label baseline (for ``one_given`` the shown hashtag is
one more token of its text), and the most used hashtags. Writes
benchmarks/reports/hashtags_accuracy.md and a plot, and logs them to MLflow when
MLFLOW_TRACKING_URI names a server.

    python benchmarks/hashtags_accuracy.py [--datasets tw_covid19 tw_grammys]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from common import log_report, machine
from socialsuggest.config import load_settings
from socialsuggest.models.hashtags import Draft, HashtagModel, HashtagModelConfig
from socialsuggest.models.hashtags.evaluate import (
    hidden_task,
    one_given_task,
    ranking_metrics,
)
from socialsuggest.models.hashtags.text import content_words, normalise_hashtag

REPORTS = Path(__file__).parent / "reports"
DATASETS = ("tw_covid19", "tw_grammys")
K = 3


def read_posts(path: Path) -> list[Draft]:
    """fastText lines (``__label__h … text``) as drafts: words and hashtags."""
    posts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        tokens = line.split()
        labels = [normalise_hashtag(t[9:]) for t in tokens if t.startswith("__label__")]
        text = " ".join(t for t in tokens if not t.startswith("__label__"))
        posts.append(Draft(content_words(text), tuple(dict.fromkeys(labels))))
    return posts


def _text(draft: Draft) -> str:
    return " ".join([*draft.words, *(f"hashtag_{h}" for h in draft.hashtags)])


def baseline(
    train: list[Draft], tasks: dict[str, tuple[list[Draft], list[set[str]]]]
) -> dict[str, dict[str, float]]:
    """TF-IDF 1-2 gram + OvR LR (C=10): the tag family's reference model, on hashtags."""
    started = time.perf_counter()
    mlb = MultiLabelBinarizer()
    y = mlb.fit_transform([list(p.hashtags) for p in train])
    keep = (y.sum(axis=0) > 0) & (y.sum(axis=0) < len(y))
    vec = TfidfVectorizer(ngram_range=(1, 2), token_pattern=r"\S+")
    x = vec.fit_transform([_text(p) for p in train])
    clf = OneVsRestClassifier(LogisticRegression(C=10), n_jobs=2).fit(x, y[:, keep])
    seconds = time.perf_counter() - started
    classes = list(np.asarray(mlb.classes_)[keep])
    out = {}
    for task, (drafts, gold) in tasks.items():
        proba = clf.predict_proba(vec.transform([_text(d) for d in drafts]))
        ranked = []
        for draft, row in zip(drafts, np.argsort(-proba, axis=1)[:, : K + 3], strict=True):
            shown = set(draft.hashtags)
            ranked.append([classes[j] for j in row if classes[j] not in shown][:K])
        out[task] = {**ranking_metrics(gold, ranked, K), "train_s": seconds}
    return out


def run_dataset(
    name: str, root: Path, config: HashtagModelConfig
) -> dict[str, dict[str, dict[str, float]]]:
    train = read_posts(root / name / "train.ft")
    test = read_posts(root / name / "test.ft")
    tasks = {"hidden": hidden_task(test), "one_given": one_given_task(test)}
    started = time.perf_counter()
    model = HashtagModel.fit(train, config)
    seconds = time.perf_counter() - started
    results: dict[str, dict[str, dict[str, float]]] = {task: {} for task in tasks}
    for task, (drafts, gold) in tasks.items():
        for mode in ("hybrid", "content", "cooccurrence", "popular"):
            if task == "hidden" and mode == "cooccurrence":
                continue  # nothing is shown: the co-occurrence suggester has no input
            began = time.perf_counter()
            ranked = [[s.hashtag for s in row] for row in model.suggest_many(drafts, K, mode)]
            per_ms = (time.perf_counter() - began) * 1000 / max(1, len(drafts))
            results[task][f"ours {mode}"] = {
                **ranking_metrics(gold, ranked, K),
                "train_s": seconds,
                "suggest_ms": per_ms,
            }
    for task, metrics in baseline(train, tasks).items():
        results[task]["TF-IDF + OvR LR"] = metrics
    print(
        f"[{name}] {len(train)} train / {len(test)} test posts, {model.summary()}, "
        f"fit {seconds:.1f}s",
        flush=True,
    )
    return results


def render(
    all_results: dict[str, dict[str, dict[str, dict[str, float]]]],
    config: HashtagModelConfig,
    command: str,
    seconds: float,
) -> str:
    lines = [
        "# Hashtag suggestion: hidden hashtags on the tweet collections",
        "",
        f"Machine: {machine()}. Command: `{command}` ({seconds:.0f} s).",
        "",
        f"Config: `{asdict(config)}`.",
        "",
        "Splits: ../shared/datasets/tags/tw_* (train / test as the dataset README; labels = "
        "hashtags seen 3+ times in train). `hidden`: text only; `one_given`: posts with 2+ "
        "hashtags show the first and hide the rest. Rows with no gold hashtag are excluded "
        "(training.metrics conventions).",
        "",
    ]
    for task in ("hidden", "one_given"):
        lines += [
            f"## {task}",
            "",
            f"| data | method | P@1 | P@{K} | R@{K} | NDCG@{K} | hit@{K} "
            "| coverage | n | train s | suggest ms |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, results in all_results.items():
            for method, m in results[task].items():
                cells = [m["precision_at_1"], m[f"precision_at_{K}"], m[f"recall_at_{K}"],
                         m[f"ndcg_at_{K}"], m[f"hit_rate_at_{K}"]]  # fmt: skip
                lines.append(
                    f"| {name} | {method} | "
                    + " | ".join(f"{c:.3f}" for c in cells)
                    + f" | {m['coverage']:.2f} | {int(m['n'])} | {m['train_s']:.1f} | "
                    f"{m.get('suggest_ms', float('nan')):.2f} |"
                )
        lines.append("")
    return "\n".join(lines) + "\n"


def plot(all_results: dict[str, dict[str, dict[str, dict[str, float]]]], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, task in zip(axes, ("hidden", "one_given"), strict=True):
        names = list(all_results)
        methods = list(next(iter(all_results.values()))[task])
        width = 0.8 / len(methods)
        for j, method in enumerate(methods):
            values = [
                all_results[n][task].get(method, {}).get(f"ndcg_at_{K}", np.nan) for n in names
            ]
            ax.bar(np.arange(len(names)) + j * width, values, width, label=method)
        ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names)
        ax.set_title(f"{task}: NDCG@{K}")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--out", type=Path, default=REPORTS / "hashtags_accuracy.md")
    args = parser.parse_args()
    root = load_settings().resolved_datasets_dir / "tags"
    config = HashtagModelConfig()
    started = time.perf_counter()
    results = {name: run_dataset(name, root, config) for name in args.datasets}
    seconds = time.perf_counter() - started
    command = "python benchmarks/hashtags_accuracy.py --datasets " + " ".join(args.datasets)
    args.out.write_text(render(results, config, command, seconds))
    png = plot(results, args.out.with_suffix(".png"))
    print(f"report: {args.out}")
    headline = {
        f"{n}.{t}.{m.split()[-1] if m.startswith('ours') else 'baseline'}.ndcg_at_{K}": v[
            f"ndcg_at_{K}"
        ]
        for n, r in results.items()
        for t, ms in r.items()
        for m, v in ms.items()
        if m in ("ours hybrid", "TF-IDF + OvR LR")
    }
    print(log_report("hashtags_accuracy", args.out, [png], headline))


if __name__ == "__main__":
    main()

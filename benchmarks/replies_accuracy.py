"""Suggested replies on real inbound messages: US airline tweets, one org per airline.

../shared/datasets/raw/airline/airline_tweets_clean.csv: tweets addressed to six
airlines (Figure Eight, CC BY-NC-SA 4.0). A saved reply per reason a customer wrote
(``negativereason``: late flight, lost luggage, ...; ``positive`` → a thank-you reply,
``neutral`` → an information reply) stands in for the reply an agent picked: the closest
public analog of "saved reply chosen" events. Split per airline by time: the newest 20%
of each airline's tweets are the test set.

Methods, per airline, scored by the same function (macro F1 of the top reply,
accuracy@1, hit-rate@3, MRR@3): our ranker (TF-IDF + LR, majority down-sampling), the
same without down-sampling, and the most chosen reply. Writes
benchmarks/reports/replies_accuracy.md; logs to MLflow when MLFLOW_TRACKING_URI names
a server.

    python benchmarks/replies_accuracy.py
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path

import numpy as np

from common import log_report, machine
from socialsuggest.config import load_settings
from socialsuggest.models.replies import ReplyModelConfig, ReplyRanker, evaluate_replies
from socialsuggest.processing.text import clean_text

REPORTS = Path(__file__).parent / "reports"
K = 3


def load(path: Path) -> dict[str, list[tuple[datetime, str, str]]]:
    """airline -> [(created, cleaned text, reply id)], oldest first."""
    per: dict[str, list[tuple[datetime, str, str]]] = {}
    with open(path, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            reason = row["negativereason"].strip() or row["airline_sentiment"]
            reply = "reply-" + reason.lower().replace(" ", "-")
            created = datetime.strptime(row["tweet_created"], "%m/%d/%Y %H:%M")
            per.setdefault(row["airline"], []).append((created, clean_text(row["text"]), reply))
    return {a: sorted(rows) for a, rows in per.items()}


def run(
    rows: list[tuple[datetime, str, str]], config: ReplyModelConfig
) -> dict[str, dict[str, float]]:
    cut = int(len(rows) * 0.8)
    train, test = rows[:cut], rows[cut:]
    texts, labels = [r[1] for r in train], [r[2] for r in train]
    test_texts, test_labels = [r[1] for r in test], [r[2] for r in test]
    out = {}
    for name, cfg in (
        ("ours (down-sampled)", config),
        ("no down-sampling", replace(config, max_class_ratio=0)),
    ):
        started = time.perf_counter()
        model = ReplyRanker.fit(texts, labels, cfg)
        seconds = time.perf_counter() - started
        out[name] = {**evaluate_replies(model, test_texts, test_labels, K), "train_s": seconds}
    ranked_common = [r for r, _ in Counter(labels).most_common(K)]
    gold = [g for g in test_labels if g in set(labels)]
    out["most chosen reply"] = {
        "macro_f1": _f1_constant(gold, ranked_common[0]),
        "accuracy_at_1": float(np.mean([g == ranked_common[0] for g in gold])),
        f"hit_rate_at_{K}": float(np.mean([g in ranked_common for g in gold])),
        f"mrr_at_{K}": float(
            np.mean([1 / (ranked_common.index(g) + 1) if g in ranked_common else 0 for g in gold])
        ),
        "n": float(len(gold)),
        "train_s": 0.0,
    }
    return out


def _f1_constant(gold: list[str], answer: str) -> float:
    from sklearn.metrics import f1_score

    return float(
        f1_score(
            gold, [answer] * len(gold), average="macro", labels=sorted(set(gold)), zero_division=0
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=REPORTS / "replies_accuracy.md")
    args = parser.parse_args()
    data = load(
        load_settings().resolved_datasets_dir / "raw" / "airline" / "airline_tweets_clean.csv"
    )
    config = ReplyModelConfig()
    started = time.perf_counter()
    results = {airline: run(rows, config) for airline, rows in sorted(data.items())}
    seconds = time.perf_counter() - started
    lines = [
        "# Suggested replies: airline tweets, one org per airline",
        "",
        f"Machine: {machine()}.",
        "",
        f"Command: `python benchmarks/replies_accuracy.py` ({seconds:.0f} s).",
        "",
        f"Config: `{asdict(config)}`. Test: the newest 20% of each airline's tweets.",
        "",
        f"| org | method | macro F1 | acc@1 | hit@{K} | MRR@{K} | n | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for airline, methods in results.items():
        for method, m in methods.items():
            lines.append(
                f"| {airline} | {method} | {m['macro_f1']:.3f} | {m['accuracy_at_1']:.3f} | "
                f"{m[f'hit_rate_at_{K}']:.3f} | {m[f'mrr_at_{K}']:.3f} | {int(m['n'])} | "
                f"{m['train_s']:.1f} |"
            )
    means = {
        method: float(np.mean([results[a][method]["macro_f1"] for a in results]))
        for method in next(iter(results.values()))
    }
    lines += [
        "",
        "Mean macro F1 over airlines: " + ", ".join(f"{m} **{v:.3f}**" for m, v in means.items()),
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(
        log_report("replies_accuracy", args.out, [], {f"macro_f1.{k}": v for k, v in means.items()})
    )


if __name__ == "__main__":
    main()

"""Tag-model accuracy on the ready-made multi-label splits, against a plain sklearn baseline.

For each data set under ``<datasets>/tags/``: train = first 90% of train.ft, validation =
its last 10% (a time-ordered proxy), test = test.ft. Compares our TagModel (model-only
ranking and the production hybrid) with TF-IDF 1-2-grams + OneVsRest(LogisticRegression
(C=10)) fitted on the same 90%. ``--ablation`` also measures NB scaling and char n-grams
on top of the defaults. Writes benchmarks/reports/tags_accuracy.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from common import machine
from socialsuggest.config import load_settings
from socialsuggest.models.tags import TagModel, TagModelConfig
from socialsuggest.training import evaluate_model, evaluate_suggestions, mean_tag_auc

REPORTS = Path(__file__).parent / "reports"
DATASETS = ("cooking", "se_biology", "se_crypto", "tw_covid19", "tw_grammys")
VALID_SHARE = 0.10


def read_fasttext(path: Path, org: str, start: pd.Timestamp) -> pd.DataFrame:
    """fastText lines → the tag-model data contract; one minute between messages."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        words = line.split()
        tags = [w.removeprefix("__label__") for w in words if w.startswith("__label__")]
        text = " ".join(w for w in words if not w.startswith("__label__"))
        rows.append((tags, text))
    n = len(rows)
    return pd.DataFrame(
        {
            "message_id": [f"{path.stem}-{i}" for i in range(n)],
            "org_id": org,
            "created_at": start + pd.to_timedelta(np.arange(n), unit="min"),
            "text": [t for _, t in rows],
            "network": "twitter",
            "message_type": "mention",
            "tags": [tags for tags, _ in rows],
        }
    )


def load(name: str, root: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    start = pd.Timestamp("2026-01-01", tz="UTC")
    full = read_fasttext(root / name / "train.ft", name, start)
    test = read_fasttext(root / name / "test.ft", name, start + pd.Timedelta(days=60))
    cut = int(len(full) * (1 - VALID_SHARE))
    return full.iloc[:cut].reset_index(drop=True), full.iloc[cut:].reset_index(drop=True), test


def baseline(train: pd.DataFrame, test: pd.DataFrame, k: int) -> dict[str, float]:
    """The reference number in datasets/README.md: TF-IDF 1-2 + OvR LR(C=10)."""
    t0 = time.perf_counter()
    mlb = MultiLabelBinarizer()
    y = mlb.fit_transform(train["tags"])
    keep = (y.sum(axis=0) > 0) & (y.sum(axis=0) < len(y))
    vec = TfidfVectorizer(ngram_range=(1, 2))
    x = vec.fit_transform(train["text"])
    clf = OneVsRestClassifier(LogisticRegression(C=10), n_jobs=2).fit(x, y[:, keep])
    seconds = time.perf_counter() - t0
    classes = list(np.asarray(mlb.classes_)[keep])
    proba = clf.predict_proba(vec.transform(test["text"]))
    top = np.argsort(-proba, axis=1)[:, :5]
    ranked = [[classes[j] for j in row] for row in top]
    gold = [frozenset(t) for t in test["tags"]]
    out = evaluate_suggestions(gold, ranked, k=k)
    out["mean_tag_auc"] = mean_tag_auc(classes, gold, proba)
    out["train_s"] = seconds
    return out


def ours(
    train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame, config: TagModelConfig
) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
    t0 = time.perf_counter()
    model = TagModel.fit(train, valid, config)
    seconds = time.perf_counter() - t0
    report = evaluate_model(model, test, k=config.k)
    report["model"]["train_s"] = report["hybrid"]["train_s"] = seconds
    report["recent"]["train_s"] = seconds
    return report, model.summary()


COLUMNS = ("precision@1", "ndcg@3", "hit_rate@3", "mean_tag_auc", "train_s")


def _row(dataset: str, name: str, m: dict[str, float], auc: float) -> str:
    values = [m["precision@1"], m["ndcg@3"], m["hit_rate@3"], auc]
    cells = " | ".join("–" if np.isnan(v) else f"{v:.3f}" for v in values)
    return f"| {dataset} | {name} | {cells} | {m['train_s']:.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS))
    parser.add_argument(
        "--ablation",
        nargs="*",
        default=["cooking", "se_crypto"],
        help="data sets on which NB scaling and char n-grams are also measured",
    )
    parser.add_argument("--out", type=Path, default=REPORTS / "tags_accuracy.md")
    args = parser.parse_args()
    root = load_settings().resolved_datasets_dir / "tags"
    default = TagModelConfig()
    other_char = None if default.char_ngrams else (2, 5)
    ablations = {
        f"ours nb_scaling={not default.nb_scaling}": replace(
            default, nb_scaling=not default.nb_scaling
        ),
        f"ours char_ngrams={other_char}": replace(default, char_ngrams=other_char),
    }
    lines: list[str] = []
    summaries: list[str] = []
    t_start = time.perf_counter()
    for name in args.datasets:
        train, valid, test = load(name, root)
        base = baseline(train, test, default.k)
        lines.append(_row(name, "baseline TF-IDF+OvR LR(C=10)", base, base["mean_tag_auc"]))
        print(lines[-1], flush=True)
        variants = {"ours": default, **(ablations if name in args.ablation else {})}
        for label, config in variants.items():
            report, summary = ours(train, valid, test, config)
            auc = report["model"]["mean_tag_auc"]
            for mode in ("model", "hybrid"):
                lines.append(_row(name, f"{label} {mode}", report[mode], auc))
                print(lines[-1], flush=True)
            if label == "ours":
                lines.append(_row(name, "ours recent-only", report["recent"], float("nan")))
                summaries.append(f"| {name} | " + " | ".join(str(v) for v in summary.values()))
                keys = list(summary)
    total = time.perf_counter() - t_start
    command = "python benchmarks/tags_accuracy.py " + " ".join(sys.argv[1:])
    header = "| data | model | P@1 | NDCG@3 | hit-rate@3 | mean tag AUC | train s |"
    text = (
        "# Tag suggestions: accuracy vs a plain sklearn baseline\n\n"
        f"- machine: {machine()}\n- command: `{command}`\n- date: {date.today()}\n"
        f"- total runtime: {total:.0f} s\n- config: `{default}`\n"
        f"- ablations on: {', '.join(args.ablation) or 'none'}\n\n"
        "Split: first 90% of train.ft = train, last 10% = validation (gate + thresholds, "
        "then refit), test.ft = test. Baseline fitted on the same 90%. `model` = top 3 "
        "enabled tags by probability; `hybrid` = enabled tags above their F2 threshold "
        "merged with the org's recent tags (recency-weighted, from train+valid, static over "
        "test), all ranked by estimated probability (classifier, else recency prior). "
        "Mean tag AUC: over tags with both classes in test (ours: every modelled tag).\n\n"
        f"{header}\n|---|---|---|---|---|---|---|\n" + "\n".join(lines) + "\n\n"
        "## Gate summary (default config)\n\n"
        f"| data | {' | '.join(keys)} |\n|---|{'---|' * len(keys)}\n"
        + "\n".join(s + " |" for s in summaries)
        + "\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} in {total:.0f} s")


if __name__ == "__main__":
    main()

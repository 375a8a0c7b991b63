"""Tag-model accuracy on the ready-made multi-label splits, against a plain sklearn baseline.

For each data set under ``<datasets>/tags/``: train = first 80% of train.ft, validation =
its last 20% (VALID_FRAC, as in the daily cycle; a time-ordered proxy), test = test.ft.
Compares our TagModel (model-only ranking and the production hybrid) with TF-IDF 1-2-grams
+ OneVsRest(LogisticRegression(C=10)) fitted on train + validation (it has no use for a
validation split), and with the peers of issue #8 (``--peers``): fastText
(the tutorial's multi-label and softmax recipes, and autotune on the validation split) and
Annif (tfidf, svc, omikuji-bonsai and their ensemble), run in their own venv
(.venv-peers, infra/peers.sh) by benchmarks/peers/ on the same splits. Every method is
scored here, by the same socialsuggest.training.metrics functions. ``--ablation`` also
measures our model with one default changed at a time (``ablations`` in ``main``: each
recent change reverted, the gate off, one thread). Writes
benchmarks/reports/tags_accuracy.md. ``--split dev`` evaluates on the newest fifth of
train.ft instead and never reads test.ft (report: tags_accuracy_dev.md): where a change is
tuned, so that test.ft confirms it once rather than choosing it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from common import log_report, machine
from peers.client import METHODS as PEER_METHODS
from peers.client import run_peers
from socialsuggest.config import load_settings
from socialsuggest.models.tags import TagModel, TagModelConfig
from socialsuggest.processing.splits import VALID_FRAC
from socialsuggest.training import evaluate_model, evaluate_suggestions, mean_tag_auc
from socialsuggest.training.metrics import ndcg_at_k
from socialsuggest.training.offline import load_labelled

REPORTS = Path(__file__).parent / "reports"
DATASETS = ("cooking", "se_biology", "se_crypto", "tw_covid19", "tw_grammys")
VALID_SHARE = VALID_FRAC  # the daily cycle's validation share
DEV_SHARE = 0.2  # ``--split dev``: the newest fifth of train.ft, held out for tuning


def read_fasttext(path: Path, org: str, start: pd.Timestamp) -> pd.DataFrame:
    """fastText lines → the tag-model data contract, read as ``socialsuggest evaluate``
    reads them (``load_labelled``: the platform's ``clean_text`` on every message, as the
    daily cycle's preprocessing and the serving path apply it); one minute between
    messages. Every method, peers included, gets this same text."""
    frame = load_labelled(path, "fasttext")
    frame["message_id"] = [f"{path.stem}-{i}" for i in range(len(frame))]
    frame["org_id"] = org
    frame["created_at"] = start + pd.to_timedelta(np.arange(len(frame)), unit="min")
    return frame


def load(
    name: str, root: Path, split: str = "test"
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, validation, evaluation) of one data set. ``split="dev"`` evaluates on the
    newest DEV_SHARE of train.ft and never reads test.ft: the window to tune on, so that
    test.ft stays an unseen confirmation of what the dev window chose."""
    start = pd.Timestamp("2026-01-01", tz="UTC")
    full = read_fasttext(root / name / "train.ft", name, start)
    if split == "dev":
        cut = int(len(full) * (1 - DEV_SHARE))
        full, test = full.iloc[:cut].reset_index(drop=True), full.iloc[cut:].reset_index(drop=True)
    else:
        test = read_fasttext(root / name / "test.ft", name, start + pd.Timedelta(days=60))
    cut = int(len(full) * (1 - VALID_SHARE))
    return full.iloc[:cut].reset_index(drop=True), full.iloc[cut:].reset_index(drop=True), test


def baseline(
    train: pd.DataFrame, test: pd.DataFrame, k: int
) -> tuple[dict[str, float], list[list[str]]]:
    """The reference number in datasets/README.md: TF-IDF 1-2 + OvR LR(C=10); its
    metrics and its top 5 per test message."""
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
    return out, ranked


def ours(
    train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame, config: TagModelConfig
) -> tuple[dict[str, dict[str, float]], dict[str, object], dict[str, list[list[str]]]]:
    """Our model's metrics per mode, what it chose and its gate summary, and its top 5
    per message per mode."""
    t0 = time.perf_counter()
    model = TagModel.fit(train, valid, config)
    seconds = time.perf_counter() - t0
    report = evaluate_model(model, test, k=config.k)
    # NDCG@5 over five suggestions, like every other method here (evaluate_model ranks k)
    gold = [frozenset(t) for t in test["tags"]]
    ranked = {}
    for mode in ("model", "recent", "hybrid"):
        five = model.suggest(test, k=5, mode=mode)
        report[mode]["ndcg@5"] = evaluate_suggestions(gold, five, k=config.k)["ndcg@5"]
        ranked[mode] = [[s.tag for s in row] for row in five]
    report["model"]["train_s"] = report["hybrid"]["train_s"] = seconds
    report["recent"]["train_s"] = seconds
    # what the fit chose on validation: the learner and the neighbour vote's weight
    learner = f"{model.learner} ({model.config.loss}, C={model.config.C:g})"
    chosen: dict[str, object] = {"learner": learner, "knn_weight": model.knn_weight}
    return report, {**chosen, **model.summary()}, ranked


def ndcg_rows(gold: list[frozenset[str]], ranked: list[list[str]], k: int) -> np.ndarray:
    """NDCG@k of each test message with gold tags (the report's metric, one row at a time):
    the paired samples the bootstrap below resamples."""
    return np.array([ndcg_at_k([g], [r], k) for g, r in zip(gold, ranked, strict=True) if g])


BOOTSTRAP_RESAMPLES = 2000


def paired_bootstrap(a: np.ndarray, b: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean of ``a - b`` over the same test messages,
    resampling messages: the two methods' errors on a message are correlated, so the
    paired interval is much narrower than one from two separate intervals."""
    diff = a - b
    rng = np.random.default_rng(seed)
    means = np.empty(BOOTSTRAP_RESAMPLES)
    for start in range(0, BOOTSTRAP_RESAMPLES, 200):  # bounded memory on large test sets
        draws = rng.integers(0, diff.size, size=(min(200, BOOTSTRAP_RESAMPLES - start), diff.size))
        means[start : start + len(draws)] = diff[draws].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def most_frequent(train: pd.DataFrame, test: pd.DataFrame, k: int) -> dict[str, float]:
    """The same list for every message: the 5 most used tags in ``train``."""
    top = [t for t, _ in Counter(t for tags in train["tags"] for t in tags).most_common(5)]
    gold = [frozenset(t) for t in test["tags"]]
    return evaluate_suggestions(gold, [top] * len(test), k=k)


PEER_NAMES = {
    "fasttext": "fastText ova (tutorial multi-label)",
    "fasttext_softmax": "fastText softmax (lr 1, 25 ep, bigrams)",
    "fasttext_autotune": "fastText ova autotune {s}s",
    "annif_tfidf": "Annif tfidf",
    "annif_svc": "Annif svc",
    "annif_omikuji": "Annif omikuji-bonsai",
    "annif_ensemble": "Annif ensemble (tfidf+svc+omikuji)",
}
#: settings shown in the peers table (the rest is said once in the report text)
SETTING_KEYS = (
    "lr", "epoch", "dim", "wordNgrams", "bucket", "minn", "maxn", "loss", "threads",
    "backend", "cluster_balanced", "cluster_k", "max_depth", "sources", "trained_on",
)  # fmt: skip


def peer_rows(
    name: str,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    test: pd.DataFrame,
    methods: list[str],
    autotune_seconds: int,
    k: int,
    keep: Path | None,
) -> tuple[dict[str, dict[str, float]], dict[str, dict]]:
    """Run the peers on the same split and score them with our metrics."""
    if keep is not None:
        results = run_peers(train, valid, test, methods, autotune_seconds, keep / name, label=name)
    else:
        with tempfile.TemporaryDirectory(prefix=f"peers-{name}-") as tmp:
            results = run_peers(train, valid, test, methods, autotune_seconds, tmp, label=name)
    gold = [frozenset(t) for t in test["tags"]]
    metrics = {}
    for method in methods:
        r = results[method]
        if "error" in r:
            continue
        m = evaluate_suggestions(gold, r["ranked"], k=k)
        m["mean_tag_auc"] = mean_tag_auc(r["labels"], gold, r["scores"])
        m["train_s"] = r["train_s"]
        metrics[method] = m
    return metrics, results


def _settings_text(settings: dict) -> str:
    parts = []
    for key in SETTING_KEYS:
        if key in settings:
            value = settings[key]
            if isinstance(value, float):
                value = f"{value:.3g}"
            elif isinstance(value, list):
                value = "+".join(str(v) for v in value)
            parts.append(f"{key}={value}")
    tuning = settings.get("autotune")
    if tuning:
        parts.append(
            f"autotune {tuning['seconds']} s: {tuning['trials']} trials, best validation "
            f"f1@1 {tuning['best_validation_f1']:.3f}"
        )
        if "final_retrain" in tuning:
            parts.append(tuning["final_retrain"])
    return ", ".join(parts)


K = TagModelConfig().k
VALUE_KEYS = (
    "precision@1",
    f"precision@{K}",
    f"recall@{K}",
    f"ndcg@{K}",
    "ndcg@5",
    f"hit_rate@{K}",
)
HEADER = (
    f"| data | model | P@1 | P@{K} | R@{K} | NDCG@{K} | NDCG@5 | hit-rate@{K} | mean tag AUC "
    "| train s |\n|---|---|---|---|---|---|---|---|---|---|"
)


def _row(dataset: str, name: str, m: dict[str, float], auc: float) -> str:
    values = [m[key] for key in VALUE_KEYS] + [auc]
    cells = " | ".join("–" if np.isnan(v) else f"{v:.3f}" for v in values)
    return f"| {dataset} | {name} | {cells} | {m['train_s']:.1f} |"


def readme_reference(readme: Path) -> tuple[list[str], dict[str, list[str]]]:
    """The reference-number table of datasets/README.md: header cells, rows by data set."""
    if not readme.is_file():
        return [], {}
    header: list[str] = []
    rows: dict[str, list[str]] = {}
    for line in readme.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not header:
            if line.startswith("|") and "most-frequent" in line:
                header = cells
            continue
        if not line.startswith("|"):
            break
        if not set(cells[0]) <= set("-: "):
            rows[cells[0]] = cells
    return header, rows


def reference_table(
    readme: Path, datasets: list[str], this_run: dict[str, dict[str, dict[str, float]]]
) -> str:
    """README's earlier numbers next to this run's, for the columns both have."""
    header, rows = readme_reference(readme)
    if not header:
        return f"(no reference table found in {readme})\n"
    # README column → this run's method; the README's fastText is the softmax recipe
    sources = {"most-frequent": "most_frequent", "fastText": "fasttext_softmax",
               "TF-IDF": "baseline", "omikuji": "annif_omikuji"}  # fmt: skip
    keys = [next((v for k, v in sources.items() if k in h), None) for h in header[1:]]
    lines = [
        f"| data | numbers from | {' | '.join(header[1:])} |",
        "|---|---|" + "---|" * (len(header) - 1),
    ]
    for name in datasets:
        if name in rows:
            lines.append(f"| {name} | datasets/README.md | {' | '.join(rows[name][1:])} |")
        cells = []
        for head, key in zip(header[1:], keys, strict=True):
            m = this_run.get(name, {}).get(key) if key else None
            if m is None:
                cells.append("–")
            elif "P@1" in head:
                cells.append(f"{m['precision@1']:.3f} / {m['ndcg@3']:.3f}")
            else:
                cells.append(f"{m['ndcg@3']:.3f}")
        lines.append(f"| {name} | this run | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS))
    parser.add_argument(
        "--ablation",
        nargs="*",
        default=list(DATASETS),
        help="data sets on which char n-grams, the logistic loss, the out-of-fold gate "
        "and the neighbour vote reverted, the gate switched off and one thread are also "
        "measured",
    )
    parser.add_argument(
        "--peers",
        nargs="+",
        default=list(PEER_METHODS),
        choices=[*PEER_METHODS, "none"],
        help="peer methods run on the same splits (default: all; `none` to skip)",
    )
    parser.add_argument(
        "--autotune-seconds",
        type=int,
        default=300,
        help="fastText autotune budget per data set (validation split as its target)",
    )
    parser.add_argument(
        "--peers-keep",
        type=Path,
        default=None,
        help="keep the peers' splits, scores and logs under DIR/<data set> (default: temp)",
    )
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="threads fitting our per-tag models (default: every core, as fastText's 12 "
        "threads and the baseline's n_jobs=2 use them); an ablation row times 1",
    )
    parser.add_argument(
        "--split",
        choices=("test", "dev"),
        default="test",
        help="evaluate on test.ft (default), or on the dev window: the newest "
        f"{DEV_SHARE:.0%} of train.ft, the rest split as usual; test.ft is not read. "
        "Tune on dev, confirm once on test",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.out is None:
        suffix = "" if args.split == "test" else "_dev"
        args.out = REPORTS / f"tags_accuracy{suffix}.md"
    peers = [] if "none" in args.peers else list(dict.fromkeys(args.peers))
    root = load_settings().resolved_datasets_dir / "tags"
    # the daily cycle trains orgs in parallel, one thread each (n_jobs=1); one org on
    # its own may use every core, as the peers do
    default = TagModelConfig(n_jobs=args.n_jobs)
    other_char = None if default.char_ngrams else (2, 5)
    ablations = {
        f"ours char_ngrams={other_char}": replace(default, char_ngrams=other_char),
        # the 2026-12-04 (third) change reverted: the SVM for every org
        "ours choose_learner=False (SVM only)": replace(default, choose_learner=False),
        "ours loss=logistic C=10 (was squared_hinge C=0.3), no choice": replace(
            default, loss="logistic", C=10.0, choose_learner=False
        ),
        # the 2026-12-01 (second) change reverted: thin tags judged on validation alone
        "ours gate_cv_folds=0 (was 3)": replace(default, gate_cv_folds=0),
        # the 2026-12-06 (third) change reverted: a tag validation cannot decide is
        # switched off, not judged again out of fold
        "ours gate_cv_inconclusive=False": replace(default, gate_cv_inconclusive=False),
        # the 2026-12-04 change reverted: every negative of every tag fitted
        f"ours negatives_per_positive=None (was {default.negatives_per_positive:g})": replace(
            default, negatives_per_positive=None
        ),
        # the 2026-12-06 change reverted: the top-up ordered by recency alone
        "ours knn_weights=() (no neighbour vote in the top-up)": replace(default, knn_weights=()),
        # the 2026-12-06 (second) change reverted: the gate's fold fits keep as many
        # negatives as the served fits
        "ours gate_cv_min_negatives=2000 (was 1000)": replace(
            default, gate_cv_min_negatives=default.min_negatives
        ),
        # not a candidate default: what the AUC gate costs on this data set's ranking
        "ours auc_lower_bound=0 (gate off)": replace(default, auc_lower_bound=0.0),
    }
    if args.n_jobs != 1:  # the same model on one core: the time the daily cycle pays per org
        ablations[f"ours n_jobs=1 (was {args.n_jobs})"] = replace(default, n_jobs=1)
    lines: list[str] = []
    summaries: list[str] = []
    peer_lines: list[str] = []
    versions: dict[str, str] = {}
    this_run: dict[str, dict[str, dict[str, float]]] = {}
    points: list[tuple[str, str, float, float]] = []  # (data, method, NDCG@3, train s)
    per_row: dict[tuple[str, str], np.ndarray] = {}  # (data, method) → NDCG@3 per message
    t_start = time.perf_counter()
    for name in args.datasets:
        train, valid, test = load(name, root, args.split)
        gold = [frozenset(t) for t in test["tags"]]
        base, ranked = baseline(pd.concat([train, valid], ignore_index=True), test, default.k)
        per_row[name, "sklearn baseline"] = ndcg_rows(gold, ranked, default.k)
        this_run[name] = {
            "baseline": base,
            "most_frequent": most_frequent(pd.concat([train, valid]), test, default.k),
        }
        lines.append(_row(name, "baseline TF-IDF+OvR LR(C=10)", base, base["mean_tag_auc"]))
        points.append((name, "sklearn baseline", base["ndcg@3"], base["train_s"]))
        print(lines[-1], flush=True)
        variants = {"ours": default, **(ablations if name in args.ablation else {})}
        for label, config in variants.items():
            report, summary, ranked_by_mode = ours(train, valid, test, config)
            auc = report["model"]["mean_tag_auc"]
            for mode in ("model", "hybrid"):
                lines.append(_row(name, f"{label} {mode}", report[mode], auc))
                print(lines[-1], flush=True)
            if label == "ours":
                for mode in ("model", "hybrid"):
                    m = report[mode]
                    points.append((name, f"ours {mode}", m["ndcg@3"], m["train_s"]))
                    per_row[name, f"ours {mode}"] = ndcg_rows(gold, ranked_by_mode[mode], default.k)
                lines.append(_row(name, "ours recent-only", report["recent"], float("nan")))
                summaries.append(f"| {name} | " + " | ".join(str(v) for v in summary.values()))
                keys = list(summary)
        if peers:
            metrics, results = peer_rows(
                name, train, valid, test, peers, args.autotune_seconds, default.k, args.peers_keep
            )
            this_run[name].update(metrics)
            for method in peers:
                title = PEER_NAMES[method].format(s=args.autotune_seconds)
                r = results[method]
                versions = r["versions"]
                if "error" in r:
                    lines.append(f"| {name} | {title} | failed: {r['error']} |")
                    peer_lines.append(f"| {name} | {title} | – | – | – | failed: {r['error']} |")
                    print(lines[-1], flush=True)
                    continue
                m = metrics[method]
                points.append((name, title, m["ndcg@3"], m["train_s"]))
                per_row[name, title] = ndcg_rows(gold, r["ranked"], default.k)
                lines.append(_row(name, title, m, m["mean_tag_auc"]))
                print(lines[-1], flush=True)
                peer_lines.append(
                    f"| {name} | {title} | {len(r['labels'])} | {r['train_s']:.1f} "
                    f"| {r['predict_s']:.1f} | {_settings_text(r['settings'])} |"
                )
    total = time.perf_counter() - t_start
    command = "python benchmarks/tags_accuracy.py " + " ".join(sys.argv[1:])
    peers_text = ""
    if peers:
        peers_text = (
            "## Peers: what ran, and how long\n\n"
            "Peers venv (.venv-peers, requirements-peers.txt): "
            + ", ".join(f"{k} {v}" for k, v in versions.items())
            + ". Each peer sees the same three splits as ours, written as fastText files; "
            "train s and predict s (all test messages) are wall seconds inside the peers "
            "process. Ranked lists are each peer's top 5 by its score; mean tag AUC uses "
            "its score for every (message, tag it knows) pair, 0 where it gave none "
            "(Annif returns no score for some pairs; fastText scores every label).\n\n"
            "- fastText's fixed recipes train on train + validation, autotune on the train "
            "split (validation is its target). `fastText ova` is the "
            "tutorial's multi-label command (lr 0.5, 25 epochs, bigrams, bucket 200000, "
            'dim 50, one-vs-all loss): lr 1.0 with one-vs-all stops with "Encountered '
            'NaN" on 4 of the 5 sets, which is why the tutorial lowers it. `fastText '
            "softmax` is the tutorial's lr 1.0 / 25 epochs / bigrams recipe with its "
            "default softmax loss (the setting of the README's reference numbers). "
            "Autotune searches on the train split against the validation split for "
            f"{args.autotune_seconds} s (default metric f1@1, loss fixed to one-vs-all), "
            "then retrains the best arguments; its train s includes the search. fastText "
            "runs its default 12 threads on the 2 cores: with fewer, this build leaves "
            "part of the input matrix uninitialised (garbage after an earlier training in "
            "the same process, which made autotune fail with NaN).\n"
            "- Annif trains on train + validation (no backend here uses a validation "
            "split; our model also refits on train + validation), analyzer "
            "`snowball(english)`: the Snowball stemmer works offline, but every Annif "
            "analyzer tokenises with NLTK's Punkt, whose `punkt_tab` data cannot be "
            "downloaded here, so the peers run with an empty Punkt parameter set "
            "(sentence splits without learned abbreviations; the texts are already "
            "tokenised). omikuji-bonsai = the Annif wiki's Bonsai settings; the "
            "ensemble averages the three with equal weights and has no training of "
            "its own (train s = the sum of its sources'). Annif's svc is multi-class: a "
            "message with several tags is trained on one of them only.\n\n"
            "| data | peer | tags known | train s | predict s | settings |\n"
            "|---|---|---|---|---|---|\n" + "\n".join(peer_lines) + "\n\n"
        )
    reference = (
        reference_table(root.parent / "README.md", args.datasets, this_run)
        if args.split == "test"
        else "Not shown: the README's numbers were measured on test.ft, this run's on the "
        "dev window.\n"
    )
    if args.split == "dev":
        split_text = (
            f"Split (`--split dev`, for tuning: test.ft is not read): the newest "
            f"{DEV_SHARE:.0%} of train.ft = test (called dev), of the rest the first "
            f"{1 - VALID_SHARE:.0%} = train, the last {VALID_SHARE:.0%} = validation (gate "
            "+ thresholds, then refit). "
        )
    else:
        split_text = (
            f"Split: first {1 - VALID_SHARE:.0%} of train.ft = train, last "
            f"{VALID_SHARE:.0%} = validation (gate + thresholds, then refit), test.ft = test. "
        )
    text = (
        "# Tag suggestions: accuracy vs a plain sklearn baseline and peer tools\n\n"
        f"- machine: {machine()}\n- command: `{command}`\n- date: {date.today()}\n"
        f"- total runtime: {total:.0f} s\n- config: `{default}`\n"
        f"- ablations on: {', '.join(args.ablation) or 'none'}\n"
        f"- peers: {', '.join(peers) or 'none'}"
        + (f" (autotune {args.autotune_seconds} s)" if "fasttext_autotune" in peers else "")
        + "\n\n"
        "Text: every message read as `socialsuggest evaluate` reads it (the platform's "
        "`clean_text`, as the daily cycle and the serving path apply it), for every method. "
        + split_text
        + "The baseline, with no use for a validation split, is "
        "fitted on train + validation, as Annif and fastText's fixed recipes are. "
        "`model` = top 3 "
        "enabled tags by probability; `hybrid` = enabled tags above their F2 threshold "
        "merged with the org's recent tags (recency-weighted, from train+valid, static over "
        "test), all ranked by estimated probability (classifier, else recency prior). "
        "Every row is scored by `socialsuggest.training.metrics` (`evaluate_suggestions`, "
        "`mean_tag_auc`); NDCG@5 ranks 5 suggestions for every method (ours: "
        "`suggest(k=5)` in the same mode). "
        f"Train s: ours fits its per-tag models on {args.n_jobs} thread(s) (`n_jobs`), "
        "as the peers use every core; `ours n_jobs=1` is the same model on one core, "
        "the time the daily cycle pays per org (it trains orgs side by side, one thread "
        "each). On more than one thread liblinear's shared random generator interleaves, "
        "so the coordinate order, and NDCG@3 in the fourth decimal, varies between runs. "
        "Every method is timed once here, minutes apart, and the same fit varies by 20-40% "
        "from one minute to the next on a shared 2-core machine: `tags_speed.md` "
        "(`tags_speed.py`) times ours and fastText in interleaved rounds. "
        "Mean tag AUC: over tags with both classes in test (ours: every modelled tag; a "
        "peer: every tag it knows).\n\n"
        f"{HEADER}\n"
        + "\n".join(lines)
        + "\n\n"
        + f"![NDCG@3 per data set, and training time against NDCG@3]({args.out.stem}.png)\n\n"
        + "## Where we lead or trail\n\n"
        + "Δ > 0: the better of our two modes leads every other method of this run on "
        "NDCG@3; the hybrid is what the API serves. 95% interval: a paired bootstrap "
        f"over the test messages ({BOOTSTRAP_RESAMPLES} resamples) of the mean per-message "
        "NDCG@3 difference between that mode of ours and the strongest other method; an "
        "interval that holds 0 is a difference this test set cannot tell from chance.\n\n"
        + lead_table(points, per_row)
        + "\n"
        + peers_text
        + "## Earlier reference numbers (datasets/README.md) and this run\n\n"
        "The README's numbers were measured earlier on the same test sets (P@1 / NDCG@3); "
        "this run's fastText column is `fastText softmax`, trained on the train split like "
        "the baseline; Annif trains on train + validation; most-frequent = the 5 most used "
        "tags of train + validation for every message.\n\n"
        + reference
        + "\n## Learner, neighbour vote and gate summary (default config)\n\n"
        "*learner* and *knn_weight* are what the fit chose on validation (the learner "
        "comparison and the neighbour vote's weight in the recent-tag top-up, 0 = off).\n\n"
        f"| data | {' | '.join(keys)} |\n|---|{'---|' * len(keys)}\n"
        + "\n".join(s + " |" for s in summaries)
        + "\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    plot_accuracy(points, args.out.with_suffix(".png"))
    log_report("tags-accuracy", args.out, [args.out.with_suffix(".png")],
               {f"{d}.{m}.ndcg_at_3": v for d, m, v, _ in points})  # fmt: skip
    print(f"wrote {args.out} in {total:.0f} s")


def lead_table(
    points: list[tuple[str, str, float, float]],
    per_row: dict[tuple[str, str], np.ndarray] | None = None,
) -> str:
    """Per data set: ours (served hybrid, and model-only) against the strongest other
    method on NDCG@3, with a paired bootstrap interval of the difference when the
    per-message scores are known, and our training time against fastText's recipes."""
    per_row = per_row or {}
    rows = [
        "| data | ours hybrid | ours model | strongest other method | its NDCG@3 "
        "| Δ (best of ours − it) | 95% interval of Δ | ours train s "
        "| fastText ova / softmax train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for data in dict.fromkeys(d for d, *_ in points):
        mine = {m: (v, t) for d, m, v, t in points if d == data and m.startswith("ours")}
        others = [(v, m) for d, m, v, _ in points if d == data and not m.startswith("ours")]
        if not mine or not others:
            continue
        best_v, best_m = max(others)
        best_mode = max(mine, key=lambda m: mine[m][0])
        ours_best = mine[best_mode][0]
        interval = "–"
        if (data, best_mode) in per_row and (data, best_m) in per_row:
            low, high = paired_bootstrap(per_row[data, best_mode], per_row[data, best_m])
            interval = f"[{low:+.3f}, {high:+.3f}] ({best_mode.removeprefix('ours ')})"
        fast = [f"{t:.1f}" for d, m, _, t in points if d == data and m.startswith("fastText")]
        missing = (float("nan"), float("nan"))
        hybrid, model = mine.get("ours hybrid", missing), mine.get("ours model", missing)
        rows.append(
            f"| {data} | {hybrid[0]:.3f} | {model[0]:.3f} | {best_m} | {best_v:.3f} "
            f"| **{ours_best - best_v:+.3f}** | {interval} | {hybrid[1]:.1f} "
            f"| {' / '.join(fast[:2]) or '–'} |"
        )
    return "\n".join(rows) + "\n"


def plot_accuracy(points: list[tuple[str, str, float, float]], out: Path) -> None:
    """Left: NDCG@3 of every method per data set; right: training seconds vs NDCG@3."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(d for d, *_ in points))
    methods = list(dict.fromkeys(m for _, m, *_ in points))
    colours = {m: plt.get_cmap("tab20")(i % 20) for i, m in enumerate(methods)}
    fig, (bars, scatter) = plt.subplots(
        1, 2, figsize=(14, 0.9 + 0.22 * len(methods) * len(datasets) / 2 + 3)
    )
    height = 0.8 / len(methods)
    for j, method in enumerate(methods):
        ys, xs = [], []
        for i, dataset in enumerate(datasets):
            value = next((v for d, m, v, _ in points if d == dataset and m == method), None)
            if value is not None:
                ys.append(i + j * height)
                xs.append(value)
        ours = method.startswith("ours")
        bars.barh(ys, xs, height=height, color=colours[method], label=method,
                  edgecolor="black" if ours else "none", linewidth=1.2 if ours else 0)  # fmt: skip
    bars.set_yticks([i + 0.4 - height / 2 for i in range(len(datasets))], datasets)
    bars.invert_yaxis()
    bars.set_xlabel("NDCG@3 (test split)")
    bars.set_title("Accuracy vs peers, per data set (ours outlined)")
    bars.grid(True, axis="x", alpha=0.3)
    markers = dict(zip(datasets, "os^Dvx<>", strict=False))
    for dataset, method, value, seconds in points:
        if seconds and seconds > 0:
            size = 60 if method.startswith("ours") else 35
            shape = markers.get(dataset, "o")
            scatter.scatter(
                seconds, value, color=colours[method], marker=shape, s=size, edgecolor="black"
            )
    for dataset, marker in markers.items():
        scatter.scatter([], [], color="grey", marker=marker, label=dataset)
    scatter.set(xscale="log", xlabel="training seconds (log)", ylabel="NDCG@3")
    scatter.set_title("Training time vs accuracy (colour = method, shape = data set)")
    scatter.grid(True, which="both", alpha=0.3)
    handles, labels = bars.get_legend_handles_labels()
    shape_handles, shape_labels = scatter.get_legend_handles_labels()
    scatter.legend(handles + shape_handles, labels + shape_labels, fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()

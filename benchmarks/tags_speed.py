"""Training time of our tag model against fastText, in interleaved rounds.

Why: ``tags_accuracy.py`` times every method once, minutes apart. On this 2-core VM the
same fit takes 20-40% longer in one minute than in the next (se_crypto's, 2026-12-06:
5.8 s, then 8.2, 8.7 and 7.2 s in a process started minutes later), so a one-shot ratio
within ±15% of 1 says nothing about which is faster. Here each round times every method
back to back, in an order that rotates between rounds, and the report gives each round's
ratio: a neighbour's load that slows a round slows both sides of its ratio.

Methods, per data set (the splits of ``tags_accuracy.py``):

- ``ours, learner chosen``: ``TagModel.fit`` with the default config, as
  ``tags_accuracy.py`` times it: both candidate learners started and compared.
- ``ours, daily refit``: the same fit told the learner the first one chose, as the
  scheduled retrain fits an org whose production learner was chosen less than
  ``RetrainPolicy.learner_recheck_days`` (7) ago: what a scheduled refit costs until
  the choice is a week old.
- ``fastText softmax`` and ``fastText ova``: the recipes of ``peers/run_peers.py``
  (12 threads, on train + validation), each trained in a fresh ``.venv-peers`` process
  (``peers/time_fasttext.py``; its import is not timed, nor is ours).

Ours fits on every core (``n_jobs``), as fastText's threads use them. Writes
``benchmarks/reports/tags_speed.{md,png}``; logged to MLflow when
``MLFLOW_TRACKING_URI`` names a server.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from common import log_report, machine, say
from peers.client import ensure_venv, write_split
from socialsuggest.config import load_settings
from socialsuggest.models.tags import TagModel, TagModelConfig
from tags_accuracy import DATASETS, load

HERE = Path(__file__).parent
REPORT = HERE / "reports" / "tags_speed.md"
CHOSEN, DAILY, SOFTMAX, OVA = (
    "ours, learner chosen",
    "ours, daily refit",
    "fastText softmax",
    "fastText ova",
)
METHODS = (CHOSEN, DAILY, SOFTMAX, OVA)
FASTTEXT_METHOD = {SOFTMAX: "fasttext_softmax", OVA: "fasttext"}


def fasttext_seconds(python: Path, source: Path, method: str) -> float:
    """One fastText training in a fresh peers process; its training seconds."""
    done = subprocess.run(
        [str(python), str(HERE / "peers" / "time_fasttext.py"), "--input", str(source),
         "--method", FASTTEXT_METHOD[method]],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return float(json.loads(done.stdout.strip().splitlines()[-1])["train_s"])


def timed(fit: Callable[[], object]) -> float:
    started = time.perf_counter()
    fit()
    return time.perf_counter() - started


def measure(name: str, root: Path, rounds: int, config: TagModelConfig, python: Path) -> dict:
    """Every method's seconds in each round, for one data set, and the learner chosen."""
    train, valid, _ = load(name, root)
    # untimed: warms imports and caches, and names the learner the daily refit keeps
    learner = TagModel.fit(train, valid, config).learner
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    with tempfile.TemporaryDirectory(prefix="tags-speed-") as tmp:
        source = Path(tmp) / "train_valid.ft"
        write_split(pd.concat([train, valid], ignore_index=True), source)
        runs: dict[str, Callable[[], float]] = {
            CHOSEN: lambda: timed(lambda: TagModel.fit(train, valid, config)),
            DAILY: lambda: timed(lambda: TagModel.fit(train, valid, config, learner=learner)),
            SOFTMAX: lambda: fasttext_seconds(python, source, SOFTMAX),
            OVA: lambda: fasttext_seconds(python, source, OVA),
        }
        for r in range(rounds):
            order = METHODS[r % len(METHODS) :] + METHODS[: r % len(METHODS)]
            for method in order:
                times[method].append(runs[method]())
            say(
                f"{name} round {r + 1}/{rounds}: "
                + ", ".join(f"{m} {times[m][-1]:.1f} s" for m in METHODS)
            )
    return {"times": times, "learner": learner}


def ratio_cell(ours: list[float], peer: list[float]) -> str:
    """Median of the rounds' ratios, their range, and in how many rounds ours was faster."""
    ratios = np.array(ours) / np.array(peer)
    faster = int((ratios < 1).sum())
    return (
        f"**{np.median(ratios):.2f}x** ({ratios.min():.2f}-{ratios.max():.2f}; "
        f"faster in {faster}/{ratios.size})"
    )


def render(results: dict[str, dict], args: argparse.Namespace, runtime: float) -> str:
    lines = [
        "# Tag-model training time against fastText, interleaved rounds",
        "",
        f"- machine: {machine()}",
        f"- command: `{' '.join(['python benchmarks/tags_speed.py', *sys.argv[1:]])}`",
        f"- date: {date.today().isoformat()}; runtime {runtime:.0f} s; "
        f"{args.rounds} rounds per data set, ours on {args.n_jobs} thread(s)",
        "- each round times every method once, back to back, the order rotating between "
        "rounds; a ratio compares two timings of the same round. Median seconds over the "
        "rounds, then the median of the rounds' ratios (range; rounds in which ours took "
        "less time). `ours, daily refit` is the fit the scheduled retrain makes until the "
        "learner production chose is a week old (it is kept, not compared again; see the "
        "module docstring).",
        "",
        "| data | learner | "
        + " | ".join(f"{m} s" for m in METHODS)
        + " | chosen / softmax | daily / softmax | chosen / ova | daily / ova |",
        "|---|---|" + "---|" * (len(METHODS) + 4),
    ]
    for name, result in results.items():
        t = result["times"]
        medians = " | ".join(f"{np.median(t[m]):.1f}" for m in METHODS)
        ratios = " | ".join(
            ratio_cell(t[ours], t[peer]) for peer in (SOFTMAX, OVA) for ours in (CHOSEN, DAILY)
        )
        lines.append(f"| {name} | {result['learner']} | {medians} | {ratios} |")
    lines += ["", "Every round's seconds:", "", "| data | round | " + " | ".join(METHODS) + " |"]
    lines.append("|---|---|" + "---|" * len(METHODS))
    for name, result in results.items():
        t = result["times"]
        for r in range(args.rounds):
            lines.append(
                f"| {name} | {r + 1} | " + " | ".join(f"{t[m][r]:.2f}" for m in METHODS) + " |"
            )
    return "\n".join(lines) + "\n"


def plot(results: dict[str, dict], out: Path) -> None:
    """Each round's seconds per method and data set: the spread is the point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.9 * len(names)))
    colours = {m: plt.get_cmap("tab10")(i) for i, m in enumerate(METHODS)}
    for i, name in enumerate(names):
        for j, method in enumerate(METHODS):
            values = results[name]["times"][method]
            y = i + (j - 1.5) * 0.18
            ax.scatter(values, [y] * len(values), color=colours[method], s=25,
                       label=method if i == 0 else None)  # fmt: skip
            ax.plot([np.median(values)] * 2, [y - 0.08, y + 0.08], color="black", lw=1.5)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("training seconds (each round a dot; bar = median)")
    ax.set_title("Training time per round: ours vs fastText")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=REPORT)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    root = load_settings().resolved_datasets_dir / "tags"
    python = ensure_venv()
    config = TagModelConfig(n_jobs=args.n_jobs)
    started = time.perf_counter()
    results = {name: measure(name, root, args.rounds, config, python) for name in args.datasets}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(results, args, time.perf_counter() - started))
    png = args.out.with_suffix(".png")
    plot(results, png)
    say(f"report: {args.out}")
    metrics = {
        f"{name}/{m} median s": float(np.median(r["times"][m]))
        for name, r in results.items()
        for m in METHODS
    }
    log_report("tags_speed", args.out, [png], metrics)


if __name__ == "__main__":
    main()

"""Run the peer tag models (fastText, Annif) from the main venv, on our own splits.

The peers live in a separate venv (``.venv-peers``, made by ``infra/peers.sh`` from
``requirements-peers.txt``) because Annif pins its own numpy/scikit-learn. This module
writes the three splits in fastText format, runs ``run_peers.py`` there in a subprocess
and reads the scores back, so that benchmarks/tags_accuracy.py scores every method with
the same ``socialsuggest.training.metrics`` functions.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .run_peers import METHODS

__all__ = ["METHODS", "PEERS_VENV", "run_peers"]

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
PEERS_VENV = ROOT / ".venv-peers"
TOP = 5


def write_split(df: pd.DataFrame, path: Path) -> None:
    """``df`` (tags, text) as fastText's training format: every peer that reads files
    (and ``tags_speed``'s fastText timings) reads this one writer's output."""
    lines = []
    for tags, text in zip(df["tags"], df["text"], strict=True):
        bad = [t for t in tags if not t or any(c.isspace() for c in t)]
        if bad:
            raise ValueError(f"fastText labels cannot hold whitespace: {bad!r}")
        words = " ".join(str(text).split())
        lines.append(" ".join([*(f"__label__{t}" for t in tags), words]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _ranked(scores: np.ndarray, labels: list[str], k: int = TOP) -> list[list[str]]:
    """Top ``k`` labels per row by score; unscored (0) labels are not suggestions."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[labels[j] for j in row if scores[i, j] > 0] for i, row in enumerate(order)]


def ensure_venv(venv: Path = PEERS_VENV) -> Path:
    """Make or refresh the peers venv (infra/peers.sh skips when its stamp matches)."""
    subprocess.run(["bash", str(ROOT / "infra" / "peers.sh"), str(venv)], check=True)
    return venv / "bin" / "python"


def run_peers(
    train_df: pd.DataFrame,
    valid_df: pd.DataFrame,
    test_df: pd.DataFrame,
    methods: Sequence[str],
    autotune_seconds: int,
    workdir: Path | str,
    venv: Path = PEERS_VENV,
    label: str = "",
) -> dict[str, dict[str, Any]]:
    """Train and score each peer ``method`` on the given splits.

    Returns, per method: ``train_s`` and ``predict_s`` (wall seconds, measured inside the
    peers process), ``labels`` (what the method knows), ``scores`` (n_test, n_labels)
    float32, 0 where the method gave no score, ``ranked`` (top 5 labels per test row,
    best first, unscored labels left out) and ``settings`` (what was run); a method
    that failed in the peers process has ``error`` (its message) instead.
    """
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown peer methods {unknown}; known: {', '.join(METHODS)}")
    workdir = Path(workdir)
    split = workdir / "split"
    split.mkdir(parents=True, exist_ok=True)
    for name, df in (("train", train_df), ("valid", valid_df), ("test", test_df)):
        write_split(df, split / f"{name}.ft")
    python = ensure_venv(venv)
    out = workdir / "peers.json"
    log = workdir / "peers.log"
    command = [
        str(python),
        str(HERE / "run_peers.py"),
        "--split",
        str(split),
        "--methods",
        *methods,
        "--autotune-seconds",
        str(int(autotune_seconds)),
        "--out",
        str(out),
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    prefix = f"  [{label}] " if label else "  "
    # stdout and stderr go to the log (Omikuji and fastText draw progress bars there);
    # only run_peers.py's own "peers:" lines are shown.
    with log.open("w", encoding="utf-8") as sink:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=workdir,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            sink.write(line)
            if line.startswith("peers:"):
                print(prefix + line.rstrip(), flush=True)
        code = proc.wait()
    if code != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
        raise RuntimeError(f"run_peers.py exited with {code} (log: {log}):\n" + "\n".join(tail))
    result = json.loads(out.read_text(encoding="utf-8"))
    peers: dict[str, dict[str, Any]] = {}
    for method in methods:
        entry = result["methods"][method]
        if "error" in entry:  # that peer failed; the others still count
            peers[method] = {"error": entry["error"], "versions": result["versions"]}
            continue
        scores = np.load(out.with_name(entry["scores_file"]))
        if scores.shape != (len(test_df), len(entry["labels"])):
            raise RuntimeError(f"{method}: scores shape {scores.shape} does not fit the test set")
        peers[method] = {
            "train_s": float(entry["train_s"]),
            "predict_s": float(entry["predict_s"]),
            "labels": list(entry["labels"]),
            "scores": scores,
            "ranked": _ranked(scores, entry["labels"]),
            "settings": entry["settings"],
            "versions": result["versions"],
        }
    return peers

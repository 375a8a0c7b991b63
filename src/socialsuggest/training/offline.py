"""Offline evaluation on a user's own labelled files (``socialsuggest evaluate``).

Like ``annif eval``: anyone can measure the tag model on their data without the
lake, Spark or MLflow. The train file's last 20% (file order = time order) is the
validation slice the per-tag gates and thresholds are tuned on; the test file is
only scored.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from socialsuggest.models.tags import TagModel, TagModelConfig
from socialsuggest.processing.splits import VALID_FRAC
from socialsuggest.processing.text import clean_text
from socialsuggest.training.metrics import evaluate_model

Format = Literal["fasttext", "jsonl", "csv"]
_LABEL = "__label__"


def _fasttext(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        tags = [w[len(_LABEL) :] for w in words if w.startswith(_LABEL)]
        text = " ".join(w for w in words if not w.startswith(_LABEL))
        if not text:
            raise ValueError(f"{path}:{number}: line has labels but no text")
        rows.append({"text": text, "tags": tags})
    return rows


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict) or "text" not in record:
            raise ValueError(f"{path}:{number}: needs an object with 'text' and 'tags'")
        rows.append(record)
    return rows


def _csv(path: Path) -> list[dict[str, Any]]:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"text", "tags"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    rows: list[dict[str, Any]] = frame.to_dict("records")
    for row in rows:
        raw = row["tags"].strip()
        row["tags"] = json.loads(raw) if raw.startswith("[") else raw.replace("|", " ").split()
    return rows


def load_labelled(path: Path, fmt: Format) -> pd.DataFrame:
    """Rows of (text, tags, network, message_type, created_at) in file order."""
    readers = {"fasttext": _fasttext, "jsonl": _jsonl, "csv": _csv}
    if fmt not in readers:
        raise ValueError(f"format: {fmt!r} is not one of {sorted(readers)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    rows = readers[fmt](path)
    if not rows:
        raise ValueError(f"{path}: no examples")
    frame = pd.DataFrame(rows)
    start = datetime(2000, 1, 1, tzinfo=UTC)
    frame["text"] = [clean_text(str(t)) for t in frame["text"]]
    frame["tags"] = [list(t) if isinstance(t, list) else [] for t in frame["tags"]]
    frame["network"] = frame.get("network", pd.Series("twitter", index=frame.index)).fillna(
        "twitter"
    )
    frame["message_type"] = frame.get(
        "message_type", pd.Series("mention", index=frame.index)
    ).fillna("mention")
    if "created_at" not in frame:
        frame["created_at"] = [start + timedelta(minutes=i) for i in range(len(frame))]
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    frame["message_id"] = [f"row-{i}" for i in range(len(frame))]
    frame["org_id"] = "evaluate"
    return frame


def evaluate_files(
    train_path: Path,
    test_path: Path,
    fmt: Format = "fasttext",
    config: TagModelConfig | None = None,
    valid_frac: float = VALID_FRAC,
) -> dict[str, Any]:
    """Train on ``train_path`` and report the metrics of every mode on ``test_path``."""
    config = config or TagModelConfig()
    train_all = load_labelled(train_path, fmt)
    test = load_labelled(test_path, fmt)
    n_valid = max(1, int(len(train_all) * valid_frac))
    train, valid = train_all.iloc[:-n_valid], train_all.iloc[-n_valid:]
    started = time.perf_counter()
    model = TagModel.fit(train.reset_index(drop=True), valid.reset_index(drop=True), config)
    train_seconds = time.perf_counter() - started
    metrics = evaluate_model(model, test, k=config.k)
    return {
        **metrics,
        "train_seconds": round(train_seconds, 2),
        "rows": {"train": len(train), "valid": len(valid), "test": len(test)},
        "model_summary": model.summary(),
        "learner": {
            "kept": model.learner,
            "validation_ndcg@3": dict(model.learner_scores),
            "loss": model.config.loss,
            "knn_weight": model.knn_weight,
            "knn_validation_ndcg@3": {f"{w:g}": v for w, v in model.knn_scores if math.isfinite(v)},
        },
    }

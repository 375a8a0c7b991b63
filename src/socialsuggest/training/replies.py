"""One org's saved-reply ranker: labelled messages, a time split, fit, evaluate (no I/O).

Labels come from "saved reply chosen" events once an org has ``MIN_CHOICES`` of them;
before that, from bootstrapping the org's outgoing replies (templates from clusters,
auto-labels above the fuzz threshold, and any labels a person gave in the review round
trip). The result says which (``label_source``), because a bootstrapped model ranks
templates nobody saved yet and an operator should know.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from socialsuggest.models.replies import (
    Bootstrap,
    BootstrapConfig,
    ReplyModelConfig,
    ReplyRanker,
    bootstrap_labels,
    evaluate_replies,
)

TEST_FRAC = 0.2
#: Fewer recorded choices than this: labels are bootstrapped from outgoing replies.
MIN_CHOICES = 30
LabelSource = Literal["chosen", "bootstrap"]


@dataclass
class ReplyResult:
    org: str
    ok: bool
    error: str | None = None
    model: ReplyRanker | None = None
    #: saved reply / template id -> its text (templates: names as ``<name>``)
    texts: dict[str, str] = field(default_factory=dict)
    label_source: LabelSource = "chosen"
    metrics: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    window: tuple[str, str] = ("", "")
    test: pd.DataFrame | None = None
    seconds: float = 0.0
    fingerprint: str = ""


def labelled_messages(
    messages: pd.DataFrame,
    choices: pd.DataFrame,
    sent: pd.DataFrame,
    reviewed: Mapping[str, str] | None = None,
    config: BootstrapConfig | None = None,
) -> tuple[pd.DataFrame, LabelSource, Bootstrap | None]:
    """Messages (``message_id``, ``created_at``, cleaned ``text``) with a ``label``.

    ``choices``: message_id, reply_id; ``sent``: reply_message_id, message_id, text;
    ``reviewed``: reply_message_id -> template id from the review CSV.
    """
    if len(choices) >= MIN_CHOICES:
        last = choices.drop_duplicates("message_id", keep="last")
        labelled = messages.merge(last[["message_id", "reply_id"]], on="message_id")
        return labelled.rename(columns={"reply_id": "label"}), "chosen", None
    if sent.empty:
        return messages.iloc[0:0].assign(label=pd.Series(dtype=str)), "bootstrap", None
    sent = sent.reset_index(drop=True)
    result = bootstrap_labels(sent["text"].astype(str).tolist(), config)
    labels = {sent.at[i, "reply_message_id"]: t for i, t in result.labels.items()}
    known = {t.template_id for t in result.templates}
    labels.update({r: t for r, t in (reviewed or {}).items() if t in known})
    pairs = sent.assign(label=sent["reply_message_id"].map(labels)).dropna(subset=["label"])
    pairs = pairs.drop_duplicates("message_id", keep="last")[["message_id", "label"]]
    return messages.merge(pairs, on="message_id"), "bootstrap", result


def fingerprint(labelled: pd.DataFrame, config: ReplyModelConfig) -> str:
    digest = hashlib.sha256()
    rows = labelled.loc[:, ["message_id", "text", "label"]].sort_values("message_id")
    digest.update(pd.util.hash_pandas_object(rows.astype(str), index=False).to_numpy().tobytes())
    digest.update(repr(config).encode())
    return digest.hexdigest()[:32]


def train_reply_org(
    org: str,
    labelled: pd.DataFrame,
    source: LabelSource,
    texts: Mapping[str, str],
    config: ReplyModelConfig | None = None,
) -> ReplyResult:
    """Fit on the older labelled messages, evaluate on the newest ``TEST_FRAC``."""
    config = config or ReplyModelConfig()
    started = time.perf_counter()
    if len(labelled) < 2 * config.min_examples:
        return ReplyResult(
            org,
            ok=False,
            label_source=source,
            error=f"labels: {len(labelled)} labelled messages ({source})",
        )
    ordered = labelled.sort_values(["created_at", "message_id"], kind="stable")
    cut = int(len(ordered) * (1 - TEST_FRAC))
    train, test = ordered.iloc[:cut], ordered.iloc[cut:]
    try:
        model = ReplyRanker.fit(train["text"].tolist(), train["label"].tolist(), config)
        metrics = evaluate_replies(model, test["text"].tolist(), test["label"].tolist(), config.k)
    except ValueError as exc:
        return ReplyResult(org, ok=False, error=str(exc), label_source=source)
    except Exception:
        return ReplyResult(org, ok=False, error=traceback.format_exc(limit=3), label_source=source)
    window = (str(ordered["created_at"].iloc[0].date()), str(ordered["created_at"].iloc[-1].date()))
    return ReplyResult(
        org,
        ok=True,
        model=model,
        texts={r: texts.get(r, r) for r in model.replies},
        label_source=source,
        metrics=metrics,
        window=window,
        test=test,
        counts={"train": len(train), "test": len(test), **model.summary()},
        seconds=time.perf_counter() - started,
        fingerprint=fingerprint(ordered, config),
    )

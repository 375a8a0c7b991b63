"""Rank an org's saved replies for an inbound message: TF-IDF + logistic regression.

One multinomial classifier over the org's saved replies (each reply a class), as the
original team built it, with the two things they found necessary:

* **majority down-sampling**: a few generic replies ("thanks, we are on it") are
  chosen for most messages; left alone, the model learns to rank them first for
  everything. No reply keeps more than ``max_class_ratio`` × the median reply's
  examples (a seeded random subset);
* **F1 evaluation** (macro over replies, in :func:`evaluate_replies`): accuracy would
  reward predicting the generic reply.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score


@dataclass(frozen=True)
class ReplyModelConfig:
    ngram_max: int = 2
    max_features: int = 50_000
    C: float = 10.0
    #: No reply keeps more than this many times the median reply's examples
    #: (0 = no down-sampling).
    max_class_ratio: float = 3.0
    #: A reply chosen fewer times is not ranked (too little to learn it from).
    min_examples: int = 3
    k: int = 3
    seed: int = 0


def downsample(labels: Sequence[str], ratio: float, seed: int) -> np.ndarray:
    """Indices to keep: every class capped at ``ratio`` × the median class size."""
    counts = Counter(labels)
    if ratio <= 0 or len(counts) < 2:
        return np.arange(len(labels))
    cap = max(1, round(ratio * float(np.median(list(counts.values())))))
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    array = np.asarray(labels)
    for label in sorted(counts):
        rows = np.flatnonzero(array == label)
        keep.extend(rows if len(rows) <= cap else rng.choice(rows, cap, replace=False))
    return np.sort(np.asarray(keep, dtype=np.int64))


class ReplyRanker:
    def __init__(
        self,
        config: ReplyModelConfig,
        vectorizer: TfidfVectorizer,
        classifier: LogisticRegression,
        counts: dict[str, int],
    ) -> None:
        self.config = config
        self.vectorizer = vectorizer
        self.classifier = classifier
        self.replies: list[str] = [str(c) for c in classifier.classes_]
        self.counts = counts
        #: reply id -> text shown with it (bootstrapped templates have one; a saved
        #: reply's text lives in the org's own tool, so its id is all we return)
        self.texts: dict[str, str] = {}
        #: "chosen" (learned from choices) or "bootstrap" (from clustered replies)
        self.label_source = "chosen"

    @classmethod
    def fit(
        cls, texts: Sequence[str], labels: Sequence[str], config: ReplyModelConfig | None = None
    ) -> ReplyRanker:
        """Texts are cleaned (``clean_text``); labels are saved-reply ids."""
        config = config or ReplyModelConfig()
        counts = Counter(labels)
        usable = {r for r, n in counts.items() if n >= config.min_examples}
        rows = [i for i, label in enumerate(labels) if label in usable]
        if len(usable) < 2:
            raise ValueError(
                f"labels: {len(usable)} saved repl(ies) with {config.min_examples}+ examples; "
                "ranking needs at least 2"
            )
        texts = [texts[i] for i in rows]
        labels = [labels[i] for i in rows]
        keep = downsample(labels, config.max_class_ratio, config.seed)
        vectorizer = TfidfVectorizer(
            ngram_range=(1, config.ngram_max),
            sublinear_tf=True,
            max_features=config.max_features,
            token_pattern=r"\S+",
        )
        x = vectorizer.fit_transform([texts[i] for i in keep])
        classifier = LogisticRegression(C=config.C, max_iter=2000, random_state=config.seed)
        classifier.fit(x, [labels[i] for i in keep])
        return cls(config, vectorizer, classifier, {r: counts[r] for r in sorted(usable)})

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        proba: np.ndarray = self.classifier.predict_proba(self.vectorizer.transform(texts))
        return proba

    def rank(self, text: str, k: int | None = None) -> list[tuple[str, float]]:
        return self.rank_many([text], k)[0]

    def rank_many(
        self, texts: Sequence[str], k: int | None = None
    ) -> list[list[tuple[str, float]]]:
        k = min(k or self.config.k, len(self.replies))
        proba = self.scores(texts)
        top = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        return [
            [(self.replies[j], float(row[j])) for j in order]
            for row, order in zip(proba, top, strict=True)
        ]

    def summary(self) -> dict[str, int]:
        return {"n_replies": len(self.replies), "n_features": len(self.vectorizer.vocabulary_)}


def evaluate_replies(
    model: ReplyRanker, texts: Sequence[str], labels: Sequence[str], k: int = 3
) -> dict[str, float]:
    """Macro F1 of the top reply, accuracy@1, hit-rate@k and MRR@k over known replies."""
    known = [i for i, label in enumerate(labels) if label in set(model.replies)]
    if not known:
        return {"n": 0.0}
    gold = [labels[i] for i in known]
    ranked = [[r for r, _ in row] for row in model.rank_many([texts[i] for i in known], k)]
    top = [row[0] for row in ranked]
    reciprocal = [
        1.0 / (row.index(g) + 1) if g in row else 0.0 for g, row in zip(gold, ranked, strict=True)
    ]
    return {
        "macro_f1": float(
            f1_score(gold, top, average="macro", labels=sorted(set(gold)), zero_division=0)
        ),
        "accuracy_at_1": float(np.mean([g == t for g, t in zip(gold, top, strict=True)])),
        f"hit_rate_at_{k}": float(np.mean([g in row for g, row in zip(gold, ranked, strict=True)])),
        f"mrr_at_{k}": float(np.mean(reciprocal)),
        "n": float(len(known)),
    }

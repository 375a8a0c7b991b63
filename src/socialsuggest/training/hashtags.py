"""One org's hashtag model: split its posts by time, fit, evaluate (no I/O).

The newest ``TEST_FRAC`` of the posts is the test window (the model is judged on
posts written after everything it learned from, as it will be used), and production is
scored on the same window before the gates compare them.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from dataclasses import dataclass, field

import pandas as pd

from socialsuggest.models.hashtags import Draft, HashtagModel, HashtagModelConfig
from socialsuggest.models.hashtags.evaluate import evaluate_hashtags

TEST_FRAC = 0.2
#: Fewer posts than this: no model (a handful of posts teaches no embedding).
MIN_POSTS = 30


@dataclass
class HashtagResult:
    org: str
    ok: bool
    error: str | None = None
    model: HashtagModel | None = None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    window: tuple[str, str] = ("", "")
    test: list[Draft] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    fingerprint: str = ""

    def flat_metrics(self) -> dict[str, float]:
        return {
            f"{task}.{name}": value
            for task, values in self.metrics.items()
            for name, value in values.items()
            if value == value
        }


def drafts(posts: pd.DataFrame) -> list[Draft]:
    return [
        Draft(tuple(w), tuple(h)) for w, h in zip(posts["words"], posts["hashtags"], strict=True)
    ]


def fingerprint(posts: pd.DataFrame, config: HashtagModelConfig) -> str:
    """sha256 of the training input (every post, order-independent) and the config."""
    digest = hashlib.sha256()
    rows = posts.loc[:, ["post_id", "created_at", "words", "hashtags"]].sort_values("post_id")
    digest.update(pd.util.hash_pandas_object(rows.astype(str), index=False).to_numpy().tobytes())
    digest.update(repr(config).encode())
    return digest.hexdigest()[:32]


def train_hashtag_org(
    org: str, posts: pd.DataFrame, config: HashtagModelConfig | None = None
) -> HashtagResult:
    """Fit on the older posts, evaluate on the newest; errors come back in the result."""
    config = config or HashtagModelConfig()
    started = time.perf_counter()
    if len(posts) < MIN_POSTS:
        return HashtagResult(org, ok=False, error=f"posts: {len(posts)} < {MIN_POSTS} needed")
    ordered = posts.sort_values(["created_at", "post_id"], kind="stable").reset_index(drop=True)
    cut = int(len(ordered) * (1 - TEST_FRAC))
    train, test = ordered.iloc[:cut], ordered.iloc[cut:]
    window = (str(ordered["created_at"].iloc[0].date()), str(ordered["created_at"].iloc[-1].date()))
    try:
        model = HashtagModel.fit(drafts(train), config)
        test_drafts = drafts(test)
        metrics = evaluate_hashtags(model, test_drafts, k=config.k)
    except ValueError as exc:  # nothing to learn: a clear reason, not a trace
        return HashtagResult(org, ok=False, error=str(exc), seconds=time.perf_counter() - started)
    except Exception:
        return HashtagResult(
            org,
            ok=False,
            error=traceback.format_exc(limit=3),
            seconds=time.perf_counter() - started,
        )
    return HashtagResult(
        org,
        ok=True,
        model=model,
        metrics=metrics,
        window=window,
        test=test_drafts,
        counts={"train": len(train), "test": len(test), **model.summary()},
        seconds=time.perf_counter() - started,
        fingerprint=fingerprint(ordered, config),
    )

"""How well a hashtag model finds a post's hashtags when they are hidden.

Two tasks, one per suggester, both on posts the model never saw:

* ``hidden``: the draft is the post's words only; every hashtag is hidden.
* ``one_given``: posts with 2+ hashtags keep their first hashtag in the draft and hide
  the rest (what the co-occurrence suggester is for: the editor typed one).

Metrics are the tag family's (``training.metrics``), so numbers compare across families.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from socialsuggest.models.hashtags.model import HashtagModel, Mode
from socialsuggest.models.hashtags.text import Draft
from socialsuggest.training.metrics import (
    hit_rate_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

MODES: tuple[Mode, ...] = ("hybrid", "content", "cooccurrence", "popular")


def ranking_metrics(
    gold: Sequence[set[str]], ranked: Sequence[Sequence[str]], k: int
) -> dict[str, float]:
    return {
        "precision_at_1": precision_at_k(gold, ranked, 1),
        f"precision_at_{k}": precision_at_k(gold, ranked, k),
        f"recall_at_{k}": recall_at_k(gold, ranked, k),
        f"ndcg_at_{k}": ndcg_at_k(gold, ranked, k),
        f"hit_rate_at_{k}": hit_rate_at_k(gold, ranked, k),
        "coverage": sum(1 for r in ranked if r) / len(ranked) if ranked else math.nan,
        "n": float(sum(1 for g in gold if g)),
    }


def hidden_task(posts: Sequence[Draft]) -> tuple[list[Draft], list[set[str]]]:
    return [Draft(p.words, ()) for p in posts], [set(p.hashtags) for p in posts]


def one_given_task(posts: Sequence[Draft]) -> tuple[list[Draft], list[set[str]]]:
    chosen = [p for p in posts if len(p.hashtags) >= 2]
    return [Draft(p.words, p.hashtags[:1]) for p in chosen], [set(p.hashtags[1:]) for p in chosen]


def evaluate_hashtags(
    model: HashtagModel, posts: Sequence[Draft], k: int = 3, modes: Sequence[Mode] = MODES
) -> dict[str, dict[str, float]]:
    """``{"<task>.<mode>": metrics}`` for both tasks and every suggester mode."""
    results: dict[str, dict[str, float]] = {}
    for task, (drafts, gold) in (
        ("hidden", hidden_task(posts)),
        ("one_given", one_given_task(posts)),
    ):
        if not drafts:
            continue
        for mode in modes:
            ranked = [[s.hashtag for s in row] for row in model.suggest_many(drafts, k, mode)]
            results[f"{task}.{mode}"] = ranking_metrics(gold, ranked, k)
    return results

"""Trends labelled from the data by a rule, and how well a detector finds them.

The rule (independent of the detector's scoring, so it cannot grade itself):

    a hashtag **trended** if, in some hour, it had at least ``min_peak`` posts from at
    least ``min_peak`` / 2 distinct authors, and that hour's count was at least
    ``ratio`` times its mean hourly count over the ``lookback`` hours before it
    (hours with no post count as 0). Its **onset** is the first hour of the run-up to
    that peak whose count reached half the peak.

Precision: the share of detected events (groups) that contain a trended hashtag.
Recall: the share of trended hashtags some detected event contains. Delay: hours
from onset to the first window the hashtag (or its group) was listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from socialsuggest.models.trends.detector import Trend


@dataclass(frozen=True)
class LabelRule:
    min_peak: int = 10
    ratio: float = 3.0
    lookback: int = 6


def hourly_counts(posts: pd.DataFrame) -> pd.DataFrame:
    """hour x hashtag post counts (and distinct authors), every hour of the span."""
    times = pd.to_datetime(posts["created_at"], utc=True).dt.floor("h")
    exploded = posts.assign(hour=times).explode("hashtags").dropna(subset=["hashtags"])
    hours = pd.date_range(times.min(), times.max(), freq="h")
    counts = exploded.groupby(["hour", "hashtags"]).size().unstack(fill_value=0)
    return counts.reindex(hours, fill_value=0)


def label_trends(posts: pd.DataFrame, rule: LabelRule | None = None) -> dict[str, datetime]:
    """hashtag -> onset hour, for every hashtag the rule says trended (first peak)."""
    rule = rule or LabelRule()
    counts = hourly_counts(posts)
    times = pd.to_datetime(posts["created_at"], utc=True).dt.floor("h")
    authors = (
        posts.assign(hour=times)
        .explode("hashtags")
        .groupby(["hour", "hashtags"])["author_id"]
        .nunique()
    )
    onsets: dict[str, datetime] = {}
    for tag in counts.columns:
        series = counts[tag].to_numpy()
        for i, value in enumerate(series):
            if value < rule.min_peak or authors.get((counts.index[i], tag), 0) < rule.min_peak / 2:
                continue
            before = series[max(0, i - rule.lookback) : i]
            mean = float(before.mean()) if len(before) else 0.0
            if i >= rule.lookback and value >= rule.ratio * max(mean, 1.0):
                start = i
                while start > 0 and series[start - 1] >= value / 2:
                    start -= 1
                onsets[tag] = counts.index[start].to_pydatetime()
                break
    return onsets


def evaluate_trends(
    windows: list[tuple[datetime, list[Trend]]], truth: dict[str, datetime]
) -> dict[str, float]:
    """Precision, recall and detection delay (hours) of a detector's windows."""
    events: list[set[str]] = []
    first_seen: dict[str, datetime] = {}
    for at, trends in windows:
        for trend in trends:
            names = {trend.hashtag, *trend.members}
            if not any(names & e for e in events):
                events.append(set(names))
            else:
                next(e for e in events if names & e).update(names)
            for name in names:
                first_seen.setdefault(name, at)
    hits = [e for e in events if e & set(truth)]
    found = [t for t in truth if t in first_seen]
    delays = [max(0.0, (first_seen[t] - truth[t]).total_seconds() / 3600) for t in found]
    return {
        "events": float(len(events)),
        "true_trends": float(len(truth)),
        "precision": len(hits) / len(events) if events else float("nan"),
        "recall": len(found) / len(truth) if truth else float("nan"),
        "median_delay_h": float(np.median(delays)) if delays else float("nan"),
        "mean_delay_h": float(np.mean(delays)) if delays else float("nan"),
    }

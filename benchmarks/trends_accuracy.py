"""Trending hashtags on real timestamped tweets: detection precision, recall and delay.

../shared/datasets/raw/tweets/grammys_tweets.csv (80 hours, 10,000 tweets). Trends are
labelled from the data by the rule in ``models/trends/evaluate.py`` (at least 10 posts
from 5+ authors in an hour, at least 3x the mean of the 6 hours before; onset = first
hour of the run-up at half the peak). Methods: our detector; the same without bot
damping, without grouping, without the others' growth test; and "most used hashtags
this hour" (what a team would build first). Writes benchmarks/reports/trends_accuracy.md.

    python benchmarks/trends_accuracy.py
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path

import pandas as pd

from common import log_report, machine
from socialsuggest.config import load_settings
from socialsuggest.models.trends import (
    LabelRule,
    Trend,
    TrendConfig,
    TrendDetector,
    evaluate_trends,
    label_trends,
)
from socialsuggest.models.trends.detector import window_volumes
from socialsuggest.models.trends.reference import load_reference

REPORTS = Path(__file__).parent / "reports"


def most_used(posts: pd.DataFrame, top_n: int) -> list[tuple[datetime, list[Trend]]]:
    """The top hashtags of each hour by posts, excluding the collection's own tag."""
    times = posts["created_at"].dt.floor("h")
    out = []
    for hour, frame in posts.groupby(times):
        volumes = window_volumes(frame, 0.0)
        top = sorted(volumes.items(), key=lambda kv: -kv[1][0])[1 : top_n + 1]
        out.append((hour.to_pydatetime(), [Trend(t, v, v, 0.0, "") for t, (v, _) in top]))
    return out


def main() -> None:
    posts = load_reference(load_settings().resolved_datasets_dir)
    rule = LabelRule()
    truth = label_trends(posts, rule)
    base = TrendConfig()
    methods = {
        "ours": base,
        "no bot damping": replace(base, min_diversity=0.0),
        "no grouping": replace(base, group_jaccard=2.0, group_name_ratio=101.0),
        "no growth-vs-others test": replace(base, min_lift=0.0),
    }
    rows = {}
    started = time.perf_counter()
    for name, config in methods.items():
        began = time.perf_counter()
        windows = TrendDetector(config).run(posts)["all"]
        seconds = time.perf_counter() - began
        rows[name] = {**evaluate_trends(windows, truth), "seconds": seconds}
    for n in (3, 10):
        rows[f"top {n} hashtags per hour"] = {
            **evaluate_trends(most_used(posts, n), truth),
            "seconds": 0.0,
        }
    total = time.perf_counter() - started
    lines = [
        "# Trending hashtags: GRAMMYs tweets, 24-27 Nov 2021 (80 hourly windows)",
        "",
        f"Machine: {machine()}. Command: `python benchmarks/trends_accuracy.py` ({total:.0f} s).",
        "",
        f"Label rule: `{asdict(rule)}` -> {len(truth)} trended hashtags: "
        + ", ".join(sorted(truth))
        + ".",
        "",
        f"Detector config: `{asdict(base)}`.",
        "",
        "| method | events listed | precision | recall | median delay h | mean delay h | s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in rows.items():
        lines.append(
            f"| {name} | {int(m['events'])} | {m['precision']:.3f} | {m['recall']:.3f} | "
            f"{m['median_delay_h']:.1f} | {m['mean_delay_h']:.2f} | {m['seconds']:.1f} |"
        )
    lines += ["", "Delay is measured in whole windows (1 h): 0 = listed in its onset hour.", ""]
    out = REPORTS / "trends_accuracy.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(
        log_report(
            "trends_accuracy",
            out,
            [],
            {
                f"{k.replace(' ', '_')}.{m}": v[m]
                for k, v in rows.items()
                for m in ("precision", "recall")
            },
        )
    )


if __name__ == "__main__":
    main()

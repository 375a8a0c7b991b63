"""The trends family as a pure unit: growth, bot damping, time to live, grouping, filter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from socialsuggest.models.trends import (
    TrendConfig,
    TrendDetector,
    evaluate_trends,
    label_trends,
    trend_names,
)
from socialsuggest.models.trends.reference import load_reference

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _posts(
    hour: int, tag: str, n: int, *, authors: int | None = None, same_text: bool = False
) -> list[dict]:
    """``n`` posts with ``tag`` in hour ``hour``, by ``authors`` accounts (default: n)."""
    return [
        {
            "created_at": T0 + timedelta(hours=hour, minutes=i % 60),
            "author_id": f"u{i % (authors or n)}-{tag}",
            "text": "same words every time" if same_text else f"post {i} about {tag} at {hour}",
            "hashtags": [tag],
        }
        for i in range(n)
    ]


def _background(hours: int) -> list[dict]:
    """A steady chatter: 'news' 30 posts every hour, 'daily' 5."""
    return [p for h in range(hours) for p in _posts(h, "news", 30) + _posts(h, "daily", 5)]


def _run(rows: list[dict], config: TrendConfig | None = None, hours: int = 24) -> list:
    detector = TrendDetector(config or TrendConfig())
    frame = pd.DataFrame(rows)
    return detector.run(frame, start=T0, end=T0 + timedelta(hours=hours - 1))["all"]


def _listed(windows: list, hour: int) -> set[str]:
    return trend_names(windows[hour][1])


def test_a_burst_trends_and_steady_volume_does_not() -> None:
    windows = _run(_background(24) + _posts(12, "launch", 40))
    assert "launch" in _listed(windows, 12)
    assert all("news" not in _listed(windows, h) for h in range(6, 24))  # its own baseline


def test_a_copy_paste_burst_from_two_accounts_is_damped() -> None:
    bots = _posts(12, "buynow", 40, authors=2, same_text=True)
    people = _posts(12, "buynow", 40)
    assert "buynow" not in _listed(_run(_background(24) + bots), 12)
    assert "buynow" in _listed(_run(_background(24) + people), 12)
    undamped = TrendConfig(min_diversity=0.0)
    assert "buynow" in _listed(_run(_background(24) + bots, undamped), 12)


def test_a_trend_lives_a_while_after_its_peak_then_expires() -> None:
    windows = _run(_background(24) + _posts(10, "launch", 60), TrendConfig(ttl_halflife_hours=2))
    alive = [h for h in range(24) if "launch" in _listed(windows, h)]
    # peak z ~ 60: listed while 60 * 0.5^(h/2) >= 3, i.e. for about 8 hours after the peak
    assert alive[0] == 10 and 15 <= alive[-1] <= 20 and alive == list(range(10, alive[-1] + 1))
    score = next(t.score for t in windows[12][1] if t.hashtag == "launch")
    peak = next(t.score for t in windows[10][1] if t.hashtag == "launch")
    assert score == pytest.approx(peak / 2, rel=0.01)


def test_near_duplicate_hashtags_are_one_event() -> None:
    rows = _background(24) + _posts(12, "grammys", 50) + _posts(12, "grammys2022", 30)
    trends = _run(rows)[12][1]
    heads = [t for t in trends if "grammys" in (t.hashtag, *t.members)]
    assert len(heads) == 1 and set(heads[0].members) == {"grammys2022"}
    assert heads[0].hashtag == "grammys"  # the strongest member leads


def test_blocked_terms_are_filtered_after_ranking() -> None:
    rows = _background(24) + _posts(12, "nsfwclips", 50) + _posts(12, "launch", 40)
    trends = _run(rows)[12][1]
    assert "nsfwclips" not in trend_names(trends) and "launch" in trend_names(trends)
    allowed = _run(rows, TrendConfig(blocked=()))[12][1]
    assert "nsfwclips" in trend_names(allowed)


def test_segments_have_their_own_lists() -> None:
    rows = _background(24) + _posts(12, "launch", 40)
    for row in rows:  # news is chatter on twitter; daily and the launch on instagram
        row["network"] = "twitter" if row["hashtags"] == ["news"] else "instagram"
    frame = pd.DataFrame(rows)
    out = TrendDetector().run(
        frame, start=T0, end=T0 + timedelta(hours=23), segment_column="network"
    )
    assert set(out) == {"all", "instagram", "twitter"}
    assert "launch" in trend_names(out["instagram"][12][1])
    assert "launch" not in trend_names(out["twitter"][12][1])


def test_on_real_tweets_the_detector_finds_the_labelled_trends(datasets_dir: Path) -> None:
    posts = load_reference(datasets_dir)
    truth = label_trends(posts)
    assert len(truth) >= 5 and "grammys" in truth
    metrics = evaluate_trends(TrendDetector().run(posts)["all"], truth)
    assert metrics["recall"] >= 0.9 and metrics["precision"] >= 0.6
    assert metrics["median_delay_h"] <= 1

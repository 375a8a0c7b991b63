"""Trending hashtags: hourly windows, growth against a hashtag's own baseline and others'.

Per window (one hour by default), for every hashtag:

* **effective volume** -- its posts, damped when few accounts or one copy-pasted text
  make them (diversity = min(distinct authors, distinct texts) / posts; below
  ``min_diversity`` the volume shrinks in proportion): a bot burst is not a trend;
* **own baseline** -- an exponentially weighted mean of its past windows' volumes
  (zeros included), half-life ``baseline_halflife_hours``;
* **trending** when the volume is at least ``min_volume``, its Poisson z-score against
  the baseline is at least ``min_z``, and its growth ((v+1)/(b+1)) is at least
  ``min_lift`` times the growth of all hashtags together (total volume over total
  baseline): faster than its own past *and* than the others', since a busy hour lifts
  everything;
* **time to live** -- a trend's score decays by half every ``ttl_halflife_hours``
  after its peak and it stays listed while the decayed score is at least ``min_z``;
* **grouping** -- trends whose names normalise alike (#GRAMMYs, #Grammys2022),
  whose names are near-identical (fuzz >= ``group_name_ratio``) or whose posts overlap
  (Jaccard >= ``group_jaccard``) are one event, shown once under its strongest member;
* **blocked terms** are removed after ranking (the list is config, so an operator can
  extend it without a code change), never before: a blocked trend must not let a
  lesser one take its rank silently in the audit trail.

Pure: data frames in, lists out; state lives in the detector object between windows.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
from rapidfuzz import fuzz

#: A short default list; deployments extend it (``TrendConfig.blocked``).
DEFAULT_BLOCKED = ("nsfw", "porn", "xxx", "onlyfans", "nude", "sex")
_NOT_WORD = re.compile(r"[\d_]+")


@dataclass(frozen=True)
class TrendConfig:
    window_hours: int = 1
    baseline_halflife_hours: float = 6.0
    min_volume: float = 10.0
    min_z: float = 3.0
    min_lift: float = 2.0
    min_diversity: float = 0.5
    ttl_halflife_hours: float = 3.0
    group_jaccard: float = 0.5
    group_name_ratio: float = 85.0
    top_n: int = 20
    blocked: tuple[str, ...] = DEFAULT_BLOCKED


@dataclass(frozen=True)
class Trend:
    hashtag: str
    score: float
    volume: float
    baseline: float
    peak_at: str
    members: tuple[str, ...] = ()
    segment: str = "all"


@dataclass
class _State:
    baseline: dict[str, float] = field(default_factory=dict)
    #: hashtag -> (score at peak, peak window start)
    live: dict[str, tuple[float, datetime]] = field(default_factory=dict)


def canonical(tag: str) -> str:
    """#GRAMMYs, #grammys_2022 and #Grammys2022 are one name."""
    return _NOT_WORD.sub("", tag.lower()).rstrip("s")


def _diversity(texts: Sequence[str], authors: Sequence[str]) -> float:
    distinct_texts = len({" ".join(str(t).lower().split()) for t in texts})
    return min(len(set(authors)), distinct_texts) / max(1, len(texts))


def window_volumes(posts: pd.DataFrame, min_diversity: float) -> dict[str, tuple[float, set[int]]]:
    """hashtag -> (effective volume, row positions of its posts) for one window."""
    rows: dict[str, list[int]] = defaultdict(list)
    for position, tags in enumerate(posts["hashtags"]):
        for tag in set(tags):
            rows[tag].append(position)
    texts, authors = posts["text"].tolist(), posts["author_id"].tolist()
    volumes = {}
    for tag, positions in rows.items():
        diversity = _diversity([texts[i] for i in positions], [authors[i] for i in positions])
        damp = min(1.0, diversity / min_diversity) if min_diversity > 0 else 1.0
        volumes[tag] = (len(positions) * damp, set(positions))
    return volumes


class TrendDetector:
    """Feed windows in time order (:meth:`update`), or a whole span (:meth:`run`)."""

    def __init__(self, config: TrendConfig | None = None) -> None:
        self.config = config or TrendConfig()
        self.states: dict[str, _State] = defaultdict(_State)

    def update(self, start: datetime, posts: pd.DataFrame, segment: str = "all") -> list[Trend]:
        """One window's ranked, grouped, filtered trends (and the state moved on)."""
        config, state = self.config, self.states[segment]
        volumes = window_volumes(posts, config.min_diversity) if len(posts) else {}
        decay = 0.5 ** (config.window_hours / config.baseline_halflife_hours)
        growth = {t: (v + 1) / (state.baseline.get(t, 0.0) + 1) for t, (v, _) in volumes.items()}
        # everything's growth: this window's total volume over the total baseline
        total = sum(v for v, _ in volumes.values())
        typical = (total + 1) / (sum(state.baseline.values()) + 1)
        scored: dict[str, tuple[float, float, float]] = {}
        for tag, (volume, _) in volumes.items():
            base = state.baseline.get(tag, 0.0)
            z = (volume - base) / math.sqrt(base + 1.0)
            if (
                volume >= config.min_volume
                and z >= config.min_z
                and (growth[tag] >= config.min_lift * typical)
            ):
                scored[tag] = (z, volume, base)
                peak = state.live.get(tag)
                if peak is None or z >= self._decayed(peak, start):
                    state.live[tag] = (z, start)
        for tag in set(state.baseline) | set(volumes):  # zeros count: quiet hours lower it
            volume = volumes.get(tag, (0.0, set()))[0]
            state.baseline[tag] = decay * state.baseline.get(tag, 0.0) + (1 - decay) * volume
        listed = []
        for tag, peak in list(state.live.items()):
            score = self._decayed(peak, start)
            if score < config.min_z:
                del state.live[tag]  # its time to live is over
                continue
            volume, base = scored.get(tag, (0.0, volumes.get(tag, (0.0, set()))[0], 0.0))[1:]
            listed.append(
                Trend(
                    tag,
                    round(score, 3),
                    round(volume, 1),
                    round(base, 2),
                    peak[1].isoformat(),
                    segment=segment,
                )
            )
        listed.sort(key=lambda t: (-t.score, t.hashtag))
        grouped = self._group(listed, volumes)
        return [t for t in grouped if not self.blocked(t)][: config.top_n]

    def _decayed(self, peak: tuple[float, datetime], at: datetime) -> float:
        hours = (at - peak[1]).total_seconds() / 3600
        return float(peak[0] * 0.5 ** (hours / self.config.ttl_halflife_hours))

    def blocked(self, trend: Trend) -> bool:
        names = [canonical(n) for n in (trend.hashtag, *trend.members)]
        return any(term in name for term in self.config.blocked for name in names)

    def _group(
        self, ranked: list[Trend], volumes: dict[str, tuple[float, set[int]]]
    ) -> list[Trend]:
        """Near-duplicates join the strongest trend of their group (ranked order)."""
        config = self.config
        heads: list[Trend] = []
        members: dict[str, list[str]] = {}
        for trend in ranked:
            posts = volumes.get(trend.hashtag, (0.0, set()))[1]
            home = None
            for head in heads:
                for name in (head.hashtag, *members[head.hashtag]):
                    other = volumes.get(name, (0.0, set()))[1]
                    union = len(posts | other)
                    alike = fuzz.ratio(name.lower(), trend.hashtag.lower())
                    if (
                        canonical(name) == canonical(trend.hashtag)
                        or alike >= config.group_name_ratio
                        or (union and len(posts & other) / union >= config.group_jaccard)
                    ):
                        home = head
                        break
                if home:
                    break
            if home is None:
                heads.append(trend)
                members[trend.hashtag] = []
            else:
                members[home.hashtag].append(trend.hashtag)
        return [
            Trend(
                h.hashtag,
                h.score,
                h.volume,
                h.baseline,
                h.peak_at,
                tuple(members[h.hashtag]),
                h.segment,
            )
            for h in heads
        ]

    def run(
        self,
        posts: pd.DataFrame,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        segment_column: str | None = None,
    ) -> dict[str, list[tuple[datetime, list[Trend]]]]:
        """Every window from ``start`` to ``end``: segment -> [(window start, trends)]."""
        if posts.empty:
            return {}
        times = pd.to_datetime(posts["created_at"], utc=True)
        step = timedelta(hours=self.config.window_hours)
        first = (start or times.min().to_pydatetime()).replace(minute=0, second=0, microsecond=0)
        last = end or times.max().to_pydatetime()
        segments: dict[str, pd.DataFrame] = {"all": posts}
        if segment_column and segment_column in posts:
            segments |= {str(k): g for k, g in posts.groupby(segment_column)}
        out: dict[str, list[tuple[datetime, list[Trend]]]] = {}
        for name, frame in segments.items():
            frame_times = times.loc[frame.index]
            windows = []
            at = first
            while at <= last:
                mask = (frame_times >= at) & (frame_times < at + step)
                windows.append((at, self.update(at, frame.loc[mask], segment=name)))
                at += step
            out[name] = windows
        return out


def trend_names(trends: Iterable[Trend]) -> set[str]:
    return {n for t in trends for n in (t.hashtag, *t.members)}

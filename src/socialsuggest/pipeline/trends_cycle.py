"""The trends family: one global detector in the registry, its lists in the lake.

* :func:`publish_detector` -- the detector (its config and code) is the model,
  registered once as ``trends.global``. Its gate is measured on the reference
  collection (real timestamped tweets, trends labelled by the documented rule):
  precision and recall may not drop below production's by more than the tolerance.
  A re-run with the same config and code reuses the version; rollback moves the alias
  back like any other family's.
* :func:`detect_trends` -- the production detector over the last hours of every org's
  processed posts (``processed/hashtags``), per window, overall and per network; the
  newest window's lists are written to ``_state/trends/latest.json``, which
  ``GET /v1/trends`` serves. Only hashtags and counts are written: no post, author or
  org leaves the lake.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from socialsuggest.config import Settings
from socialsuggest.lake import Lake
from socialsuggest.models.trends import (
    LabelRule,
    TrendConfig,
    TrendDetector,
    evaluate_trends,
    label_trends,
)
from socialsuggest.models.trends.reference import load_reference
from socialsuggest.pipeline.publishing import (
    OrgOutcome,
    Publishable,
    Say,
    publish_candidate,
    reuse_if_same,
    verdict,
)
from socialsuggest.processing.posts import FAMILY as POSTS
from socialsuggest.processing.posts import PROCESSED_SCHEMA
from socialsuggest.quality import GateConfig
from socialsuggest.registry import PRODUCTION, Registry, model_name
from socialsuggest.registry.pyfunc import TrendsModel
from socialsuggest.serving.trends import RESULTS_KEY
from socialsuggest.training.policy import CONFIG_TAG, config_sha

log = logging.getLogger(__name__)
FAMILY = "trends"
SCOPE = "global"
GATE = GateConfig(compared=("precision", "recall"), tolerance=0.05)


@dataclass
class TrendsReport:
    detector: OrgOutcome | None
    model_version: int | None
    window_end: str
    segments: dict[str, int]
    posts: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _reference_metrics(
    config: TrendConfig, posts: pd.DataFrame, truth: dict[str, datetime]
) -> dict[str, float]:
    return evaluate_trends(TrendDetector(config).run(posts)["all"], truth)


def publish_detector(
    settings: Settings,
    registry: Registry,
    *,
    config: TrendConfig | None = None,
    dry_run: bool = False,
    actor: str = "daily-cycle",
    say: Say | None = None,
) -> OrgOutcome:
    """Gate and register the detector if its config or code is new; reuse it otherwise."""
    say = say or (lambda message: log.info("%s", message))
    config = config or TrendConfig()
    digest = hashlib.sha256(repr(config).encode() + repr(LabelRule()).encode()).hexdigest()[:32]
    # the hourly run mostly finds the same config and code: reuse before scoring anything
    reused = reuse_if_same(registry, FAMILY, SCOPE, digest, dry_run=dry_run, actor=actor)
    if reused is not None:
        say(f"trends: detector v{reused.version} {verdict(reused)}")
        return reused
    posts = load_reference(settings.resolved_datasets_dir)
    truth = label_trends(posts, LabelRule())
    metrics = _reference_metrics(config, posts, truth)
    golden_posts = posts.iloc[-400:]
    example = golden_posts.head(3).loc[:, ["created_at", "author_id", "text", "hashtags"]]
    example = example.assign(created_at=example["created_at"].astype(str), author_id="user")
    candidate = Publishable(
        family=FAMILY, org=SCOPE, model=TrendDetector(config),
        python_model=TrendsModel(), wrapped=TrendsModel(TrendDetector(config)),
        input_example=example.reset_index(drop=True), metrics=metrics,
        gated={n: metrics[n] for n in GATE.compared},
        n_labels=int(metrics["events"]), params=asdict(config),
        window=(str(posts["created_at"].min().date()), str(posts["created_at"].max().date())),
        fingerprint=digest,
        score_production=lambda loaded: _reference_metrics(loaded.model.config, posts, truth),
        golden=[{"posts": golden_posts}], answer=lambda loaded, request: [
            t["hashtag"] for t in loaded.detect(request["posts"])
        ],
        allowed=frozenset(h for tags in posts["hashtags"] for h in tags),
        headline={n: metrics[n] for n in ("precision", "recall", "median_delay_h")},
        extra_tags={CONFIG_TAG: config_sha(config), "reference": "grammys_tweets"},
        requirements=("numpy", "pandas", "pyarrow", "rapidfuzz"),
    )  # fmt: skip
    gates = GATE.budgeted(settings.gate_latency_budget_ms)
    outcome = publish_candidate(
        registry, candidate, gate_config=gates, dry_run=dry_run, actor=actor
    )
    say(
        f"trends: detector v{outcome.version} {verdict(outcome)} (reference precision "
        f"{metrics['precision']:.2f}, recall {metrics['recall']:.2f})"
    )
    return outcome


def recent_posts(lake: Lake, since: datetime) -> pd.DataFrame:
    """Every org's processed posts from ``since`` on (only the columns trends need)."""
    files = lake.files("processed", POSTS, dt_from=since.date())
    if not files:
        return PROCESSED_SCHEMA.empty_table().to_pandas()
    table = lake.read(sorted(f.key for f in files)).cast(PROCESSED_SCHEMA)
    frame = table.drop_columns(["words", "hashtags"]).to_pandas()
    frame["hashtags"] = pd.Series(table.column("hashtags").to_pylist(), index=frame.index,
                                  dtype=object)  # fmt: skip
    frame["text"] = [" ".join(w) for w in table.column("words").to_pylist()]
    return frame[frame["created_at"] >= pd.Timestamp(since)].reset_index(drop=True)


def detect_trends(
    settings: Settings,
    registry: Registry,
    *,
    hours: int = 48,
    now: datetime | None = None,
    say: Say | None = None,
) -> TrendsReport:
    """Run production's detector over the last ``hours``; write the newest lists."""
    say = say or (lambda message: log.info("%s", message))
    lake = Lake.from_settings(settings)
    production = registry.version_by_alias(model_name(FAMILY, SCOPE), PRODUCTION)
    config = registry.load_version(production).model.config if production else TrendConfig()
    now = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(hours=hours)
    posts = recent_posts(lake, start)
    runs = TrendDetector(config).run(posts, start=start, end=now, segment_column="network")
    newest = {segment: windows[-1] for segment, windows in runs.items() if windows}
    newest.setdefault("all", (now, []))  # no posts in the hours read: nothing trends
    doc = {
        "generated_at": datetime.now(UTC).isoformat(),
        "model": model_name(FAMILY, SCOPE),
        "model_version": production.version if production else None,
        "window": {"start": now.isoformat(), "hours": config.window_hours},
        "segments": {seg: [asdict(t) for t in trends] for seg, (_, trends) in newest.items()},
    }
    lake.storage.put(RESULTS_KEY, json.dumps(doc, indent=1, default=str).encode())
    counts = {seg: len(trends) for seg, (_, trends) in newest.items()}
    say(f"trends: {len(posts)} posts over {hours} h, newest window {now:%Y-%m-%d %H}:00, "
        f"listed per segment {counts}")  # fmt: skip
    version = production.version if production else None
    return TrendsReport(None, version, now.isoformat(), counts, len(posts))


def run_trends_cycle(
    settings: Settings, registry: Registry, *, dry_run: bool = False, say: Say | None = None
) -> TrendsReport:
    """Gate/register the detector, then list the current trends (make run, the DAG)."""
    outcome = publish_detector(settings, registry, dry_run=dry_run, say=say)
    report = detect_trends(settings, registry, say=say)
    report.detector = outcome
    return report

"""Champion vs challenger from the lake's serving logs (``experiments report``).

A/B: acceptance per variant (the version that served each request says which), with
a 95% interval of the difference. Shadow: the challenger was never shown, so its
acceptance cannot be measured; what can be is how often it would have suggested the
tags users accepted from the champion (``would_have_hit``) and how much the two agree
(mean Jaccard of their tag sets) — enough to decide whether an A/B test is worth it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from socialsuggest.config import Settings
from socialsuggest.lake import Lake
from socialsuggest.pipeline.acceptance import read_day
from socialsuggest.registry import Registry
from socialsuggest.serving.acceptance import Tally, daily_acceptance
from socialsuggest.serving.experiments import Experiment, compare
from socialsuggest.serving.logs import SHADOW, ZONE


def experiment_report(
    settings: Settings, registry: Registry, name: str, *, day: date | None = None
) -> dict[str, Any]:
    """The running experiment of ``name`` judged on one day or since it started."""
    experiment = registry.experiment(name)
    if experiment is None:
        raise LookupError(f"{name} has no running experiment (experiments start first)")
    org = name.split(".", 1)[1]
    lake = Lake.from_settings(settings)
    days = [day] if day else _days_since(experiment)
    champion, challenger = Tally(), Tally()
    for one in days:
        for row in daily_acceptance(*read_day(lake, one)).rows:
            if row.org != org:
                continue
            if row.model_version == experiment.challenger_version:
                challenger = challenger + row.tally
            else:
                champion = champion + row.tally
    result: dict[str, Any] = {
        "model": name,
        "experiment": experiment.__dict__,
        "days": [d.isoformat() for d in days],
        "champion": champion.as_dict(),
        "challenger": challenger.as_dict(),
        "comparison": compare(
            (champion.accepted, champion.shown), (challenger.accepted, challenger.shown)
        ).as_dict(),
    }
    if experiment.mode == "shadow":
        result["shadow"] = shadow_agreement(lake, org, days, experiment)
    return result


def _days_since(experiment: Experiment) -> list[date]:
    start = datetime.fromisoformat(experiment.started_at).date()
    today = datetime.now(UTC).date()
    return [start + timedelta(days=n) for n in range((today - start).days + 1)]


def shadow_agreement(
    lake: Lake, org: str, days: list[date], experiment: Experiment
) -> dict[str, Any]:
    """Would the challenger have suggested what users accepted from the champion?"""
    shadow = _read(lake, SHADOW, days, org)
    requests, feedback = _org_day_logs(lake, days, org)
    champion_tags = {r["request_id"]: {s["tag"] for s in r["suggestions"]} for r in requests}
    accepted: dict[str, set[str]] = {}
    for row in feedback:
        accepted.setdefault(row["request_id"], set()).update(row["accepted"] or [])
    compared = hits = accepted_total = 0
    jaccard = 0.0
    for row in shadow:
        if row["challenger_version"] != experiment.challenger_version:
            continue
        ours = champion_tags.get(row["request_id"])
        if ours is None:
            continue
        theirs = {s["tag"] for s in row["suggestions"]}
        compared += 1
        union = ours | theirs
        jaccard += len(ours & theirs) / len(union) if union else 1.0
        applied = accepted.get(row["request_id"], set()) & ours
        accepted_total += len(applied)
        hits += len(applied & theirs)
    return {
        "requests_compared": compared,
        "mean_jaccard": jaccard / compared if compared else None,
        "accepted_tags": accepted_total,
        "would_have_hit": hits / accepted_total if accepted_total else None,
    }


def _org_day_logs(
    lake: Lake, days: list[date], org: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    requests: list[dict[str, Any]] = []
    feedback: list[dict[str, Any]] = []
    for one in days:
        day_requests, day_feedback = read_day(lake, one)
        requests += [r for r in day_requests.to_pylist() if r["org_id"] == org]
        feedback += [f for f in day_feedback.to_pylist() if f["org_id"] == org]
    return requests, feedback


def _read(lake: Lake, dataset: str, days: list[date], org: str) -> list[dict[str, Any]]:
    keys = [
        f.key for f in lake.files(ZONE, dataset, dt_from=min(days), dt_to=max(days), orgs=[org])
    ]
    if not keys:
        return []
    table: pa.Table = lake.read(keys)
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows

"""The daily acceptance report: one day of serving logs → MLflow, the lake, a verdict.

One function for the DAG (``serving_acceptance_daily``), the CLI (``socialsuggest
acceptance report``) and tests. It reads the day's ``logs/tag_requests`` and
``logs/feedback`` (only the count-bearing columns: never the message text or person
ids), computes acceptance per org, model version and source with
:func:`socialsuggest.serving.acceptance.daily_acceptance`, and then

1. writes the report to the lake at ``audit/acceptance/<day>.json`` (a re-run
   replaces it: the newest computation of a day is its report);
2. logs it to MLflow's ``acceptance`` experiment, one run per day
   (:meth:`Registry.log_acceptance`). An MLflow outage only warns, as for the
   data-quality results: the verdict comes from the logs, not the tracking server;
3. raises :class:`AcceptanceBelowFloor`, naming the orgs, when an org with at least
   ``acceptance_min_shown`` suggestions that day is below ``acceptance_floor``.
   Orgs with fewer are reported but not judged: three shown and none accepted is
   noise, not a broken model.

The report holds org ids, model versions, sources and counts only, so ``audit/`` (which
deletion requests do not rewrite) may keep it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from socialsuggest.config import Settings
from socialsuggest.lake import Lake
from socialsuggest.registry import Registry
from socialsuggest.serving.acceptance import (
    FEEDBACK_COLUMNS,
    REQUEST_COLUMNS,
    DailyAcceptance,
    Tally,
    daily_acceptance,
)
from socialsuggest.serving.logs import (
    FEEDBACK,
    FEEDBACK_SCHEMA,
    TAG_REQUESTS,
    TAG_REQUESTS_SCHEMA,
    ZONE,
)

log = logging.getLogger(__name__)
AUDIT_PREFIX = "audit/acceptance"


@dataclass
class AcceptanceOutcome:
    day: date
    report: DailyAcceptance
    floor: float
    min_shown: int
    report_path: str
    mlflow_run: str = ""
    below_floor: dict[str, Tally] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "floor": self.floor,
            "min_shown": self.min_shown,
            "passed": not self.below_floor,
            "below_floor": sorted(self.below_floor),
            "report_path": self.report_path,
            "mlflow_run": self.mlflow_run,
            **self.report.summary(),
        }


class AcceptanceBelowFloor(RuntimeError):
    """Orgs whose acceptance rate was under the floor (with enough suggestions to judge)."""

    def __init__(self, outcome: AcceptanceOutcome) -> None:
        self.outcome = outcome
        self.orgs = sorted(outcome.below_floor)
        named = ", ".join(
            f"{org} {tally.rate or 0.0:.3f} ({tally.accepted}/{tally.shown})"
            for org, tally in sorted(outcome.below_floor.items())
        )
        super().__init__(
            f"acceptance on {outcome.day.isoformat()} below the floor {outcome.floor:.2f} "
            f"(orgs with at least {outcome.min_shown} suggestions shown): {named}; "
            f"report: {outcome.report_path}"
            + (f"; MLflow: {outcome.mlflow_run}" if outcome.mlflow_run else "")
        )


def read_day(lake: Lake, day: date) -> tuple[Any, Any]:
    """The day's request and feedback logs (count-bearing columns; empty tables if none)."""

    def read(dataset: str, columns: list[str], schema: Any) -> Any:
        keys = [f.key for f in lake.files(ZONE, dataset, dt_from=day, dt_to=day)]
        return lake.read(keys, columns) if keys else schema.empty_table().select(columns)

    return (
        read(TAG_REQUESTS, REQUEST_COLUMNS, TAG_REQUESTS_SCHEMA),
        read(FEEDBACK, FEEDBACK_COLUMNS, FEEDBACK_SCHEMA),
    )


def mlflow_metrics(report: DailyAcceptance) -> dict[str, float]:
    """Flat MLflow metrics: the day's totals, ``org.<org>.*`` and
    ``org.<org>.v<version>.<source>.*`` (shown, accepted, rate, ci95_low, ci95_high)."""
    metrics: dict[str, float] = {}

    def put(prefix: str, tally: Tally) -> None:
        for name, value in tally.as_dict().items():
            if value is not None:
                metrics[f"{prefix}{name}"] = float(value)

    put("", report.total())
    for org, tally in report.orgs().items():
        put(f"org.{org}.", tally)
    for row in report.rows:
        put(f"org.{row.org}.v{row.model_version}.{row.source}.", row.tally)
    return metrics


def daily_acceptance_report(
    settings: Settings,
    day: date,
    *,
    registry: Registry | None = None,
    lake: Lake | None = None,
    floor: float | None = None,
    min_shown: int | None = None,
    run: str = "",
    enforce: bool = True,
) -> AcceptanceOutcome:
    """Compute, store and log one day's acceptance; raise if an org is below the floor
    (with ``enforce``; the outcome is on the exception either way)."""
    lake = lake or Lake.from_settings(settings)
    floor = settings.acceptance_floor if floor is None else floor
    min_shown = settings.acceptance_min_shown if min_shown is None else min_shown
    requests, feedback = read_day(lake, day)
    report = daily_acceptance(requests, feedback)
    outcome = AcceptanceOutcome(
        day=day,
        report=report,
        floor=floor,
        min_shown=min_shown,
        report_path=f"{AUDIT_PREFIX}/{day.isoformat()}.json",
        below_floor=report.below_floor(floor, min_shown),
    )
    outcome.mlflow_run = _log_or_warn(
        registry or Registry(settings.resolved_tracking_uri), outcome, run
    )
    document = {**outcome.summary(), "computed_at": datetime.now(UTC).isoformat()}
    lake.storage.put(outcome.report_path, json.dumps(document, indent=1).encode())
    log.info(
        "acceptance %s: %d orgs, rate %s, below floor: %s",
        day.isoformat(),
        len(report.orgs()),
        report.total().rate,
        sorted(outcome.below_floor) or "none",
    )
    if enforce and outcome.below_floor:
        raise AcceptanceBelowFloor(outcome)
    return outcome


def _log_or_warn(registry: Registry, outcome: AcceptanceOutcome, run: str) -> str:
    """The run's URL, or "" (with a warning) when MLflow cannot take it."""
    tags = {
        "passed": str(not outcome.below_floor).lower(),
        "below_floor": ",".join(sorted(outcome.below_floor)),
        "lake.report_path": outcome.report_path,
        **({"airflow.run": run} if run else {}),
    }
    try:
        logged = registry.log_acceptance(
            outcome.day.isoformat(),
            mlflow_metrics(outcome.report),
            outcome.summary(),
            params={"floor": outcome.floor, "min_shown": outcome.min_shown},
            tags=tags,
        )
    except Exception as error:  # any MLflow failure: warn, the verdict stands
        log.warning(
            "acceptance of %s not logged to MLflow at %s (%s: %s); the report is in the lake",
            outcome.day.isoformat(),
            registry.tracking_uri,
            type(error).__name__,
            error,
        )
        return ""
    return logged.url

"""The data-quality gate of a run: validate a window, log the result, pass or raise.

One function for the DAG, the CLI and tests. The result is logged to MLflow's
``data-quality`` experiment *before* the gate decides, so a failing suite is readable
there (and in the lake under ``audit/quality/``); an MLflow outage only warns,
because the decision belongs to Great Expectations, not to the tracking server.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from socialsuggest.config import Settings
from socialsuggest.lake import Lake
from socialsuggest.quality.expectations import require, validate_processed, validate_raw
from socialsuggest.registry import log_quality_or_warn

Zone = Literal["raw", "processed"]


def check_window(
    settings: Settings,
    zone: Zone,
    *,
    dt_to: date,
    days: int,
    orgs: list[str] | None,
    run: str = "",
) -> dict[str, Any]:
    """Validate ``zone`` over the window; the summary, or :class:`DataQualityError`."""
    validate = validate_raw if zone == "raw" else validate_processed
    result = validate(Lake.from_settings(settings), dt_to=dt_to, days=days, orgs=orgs)
    tags = {"airflow.run": run} if run else None
    logged = log_quality_or_warn(settings.resolved_tracking_uri, result, tags=tags)
    result.mlflow_run = logged.url if logged else ""
    return require(result).summary()

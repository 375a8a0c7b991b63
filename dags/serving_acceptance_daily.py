"""Daily acceptance of served tag suggestions (accepted ÷ shown), from the serving logs.

Reads one day of the lake's ``logs/tag_requests`` and ``logs/feedback``, computes the
acceptance rate per org, model version and source (``model`` / ``recent``) with a
Wilson 95% interval, writes the report to ``audit/acceptance/<day>.json`` and logs it
to MLflow's ``acceptance`` experiment (``pipeline.acceptance.daily_acceptance_report``).

The run **fails without retries** when an org with at least
``SOCIALSUGGEST_ACCEPTANCE_MIN_SHOWN`` suggestions that day is below
``SOCIALSUGGEST_ACCEPTANCE_FLOOR``: a weak model does not heal on retry, and the
failure alert names the orgs. Other errors (the lake briefly unreachable) retry.

Param ``day``: empty = the day the run's data interval covers (for a scheduled run,
the day that just ended; for a manual run, yesterday).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from socialsuggest.alerts import on_failure


@dag(
    dag_id="serving_acceptance_daily",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["serving", "acceptance", "monitoring"],
    doc_md=__doc__,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "on_failure_callback": on_failure,
    },
    params={
        "day": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Day",
            description="YYYY-MM-DD; empty = the run's data interval (yesterday)",
        ),
    },
)
def serving_acceptance_daily() -> None:
    @task
    def report() -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from socialsuggest.config import load_settings
        from socialsuggest.pipeline.acceptance import (
            AcceptanceBelowFloor,
            daily_acceptance_report,
        )

        context = get_current_context()
        if context["params"].get("day"):
            day = pendulum.parse(context["params"]["day"]).date()
        elif context.get("data_interval_start") and context.get("data_interval_end"):
            day = context["data_interval_start"].date()
        else:  # a manual run without a data interval: the last complete day
            day = context["dag_run"].run_after.date() - timedelta(days=1)
        run = f"serving_acceptance_daily/{context['run_id']}"
        try:
            outcome = daily_acceptance_report(load_settings(), day, run=run)
        except AcceptanceBelowFloor as exc:
            raise AirflowFailException(str(exc)) from exc
        # the totals and the verdict; per-org rows are in the lake report and MLflow
        return {k: v for k, v in outcome.summary().items() if k not in ("rows", "orgs")}

    report()


serving_acceptance_daily()

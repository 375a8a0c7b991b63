"""Retention: delete personal data older than the window (default 180 days), audited."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from socialsuggest.alerts import on_failure


@dag(
    dag_id="lake_retention",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["gdpr", "retention"],
    doc_md=__doc__,
    default_args={
        "retries": 3,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "on_failure_callback": on_failure,
    },
    params={
        "older_than_days": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=3650,
            title="Older than (days)",
            description="empty = SOCIALSUGGEST_RETENTION_DAYS",
        ),
    },
)
def lake_retention() -> None:
    @task(pool="lake_writers")  # one lake rewriter at a time (see dags/README.md)
    def purge() -> dict[str, object]:
        from socialsuggest.config import load_settings
        from socialsuggest.privacy import open_privacy

        settings = load_settings()
        days = get_current_context()["params"].get("older_than_days") or settings.retention_days
        return open_privacy(settings).purge(older_than_days=int(days)).summary()

    purge()


lake_retention()

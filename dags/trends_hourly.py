"""Trending hashtags, every hour, over every org's posts (global lists).

preprocess posts (Spark, incremental; the 1-slot ``lake_writers`` pool) → gate the
detector: its config and code are the model ``trends.global``; precision and recall on
the reference collection (real timestamped tweets, trends labelled by a documented
rule) may not drop below production's; a new config is registered and promoted, the
same one reused → detect: production's detector over the last 48 hourly windows,
overall and per network; the newest window's lists go to the lake, where
``GET /v1/trends`` reads them. Roll the detector back with ``model_rollback``
(family ``trends``, org ``global``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, task

from socialsuggest.alerts import on_failure
from socialsuggest.family_dag import preprocess_posts


@dag(
    dag_id="trends_hourly",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=50),  # the next hour's run must not queue behind it
    on_failure_callback=on_failure,
    tags=["trends", "serving"],
    doc_md=__doc__,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "on_failure_callback": on_failure,
    },
    params={
        "hours": Param(48, type="integer", minimum=2, maximum=720, title="Hours of posts read"),
        "dry_run": Param(False, type="boolean", title="Dry run (gate, promote no detector)"),
    },
)
def trends_hourly() -> None:
    @task
    def gate_detector() -> dict[str, Any]:
        from dataclasses import asdict

        from airflow.sdk import get_current_context

        from socialsuggest.config import load_settings
        from socialsuggest.pipeline.trends_cycle import publish_detector
        from socialsuggest.registry import Registry

        settings = load_settings()
        params = get_current_context()["params"]
        outcome = publish_detector(
            settings, Registry(settings.resolved_tracking_uri),
            dry_run=bool(params["dry_run"]), actor="airflow:trends_hourly",
        )  # fmt: skip
        return asdict(outcome)

    @task
    def detect() -> dict[str, Any]:
        from dataclasses import asdict

        from airflow.sdk import get_current_context

        from socialsuggest.config import load_settings
        from socialsuggest.pipeline.trends_cycle import detect_trends
        from socialsuggest.registry import Registry

        settings = load_settings()
        hours = int(get_current_context()["params"]["hours"])
        report = detect_trends(settings, Registry(settings.resolved_tracking_uri), hours=hours)
        return asdict(report)

    preprocess_posts() >> gate_detector() >> detect()


trends_hourly()

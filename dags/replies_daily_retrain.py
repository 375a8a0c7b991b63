"""Daily retrain of the suggested-replies rankers, one model per org.

Per org: labelled inbound messages -- from "saved reply chosen" events, or, before an
org has 30 of them, bootstrapped from its outgoing replies (DBSCAN clusters on
Levenshtein distance become templates; replies at fuzz 90+ are labelled, 70-90 wait for
a person: ``socialsuggest replies review-export|review-import``) -- then TF-IDF + LR
with majority down-sampling, macro F1 on the newest messages, gates against production
on the same messages, ``replies.<org>`` registered, loaded back and asked golden
messages, then ``staging`` -> ``production`` (unless dry-run).

It reads the messages ``tags_daily_retrain`` cleaned (``processed/tags``); the day's
run of that DAG comes first in ``make run``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from socialsuggest.alerts import on_failure

ORG = r"^[a-z0-9][a-z0-9_-]{0,62}$"


@dag(
    dag_id="replies_daily_retrain",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    on_failure_callback=on_failure,
    tags=["replies", "training"],
    doc_md=__doc__,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "on_failure_callback": on_failure,
    },
    params={
        "orgs": Param(
            [],
            type="array",
            items={"type": "string", "pattern": ORG},
            title="Org subset",
            description="empty = every org with reply choices or sent replies",
        ),
        "dry_run": Param(False, type="boolean", title="Dry run (train and gate, no promotion)"),
        "orgs_per_task": Param(20, type="integer", minimum=1, maximum=500),
    },
)
def replies_daily_retrain() -> None:
    @task
    def org_batches() -> list[list[str]]:
        from socialsuggest.config import load_settings
        from socialsuggest.lake import Lake
        from socialsuggest.pipeline.replies_cycle import reply_orgs

        params = get_current_context()["params"]
        orgs = params.get("orgs") or reply_orgs(Lake.from_settings(load_settings()))
        size = int(params["orgs_per_task"])
        return [orgs[i : i + size] for i in range(0, len(orgs), size)]

    @task(max_active_tis_per_dag=1)
    def train_batch(orgs: list[str]) -> list[dict[str, Any]]:
        from dataclasses import asdict

        from socialsuggest.config import load_settings
        from socialsuggest.pipeline.replies_cycle import train_and_publish_replies
        from socialsuggest.registry import Registry

        settings = load_settings()
        params = get_current_context()["params"]
        outcomes = train_and_publish_replies(
            settings,
            Registry(settings.resolved_tracking_uri),
            orgs,
            dry_run=bool(params["dry_run"]),
            actor="airflow:replies_daily_retrain",
        )
        return [asdict(o) for o in outcomes]

    @task
    def report(batches: list[list[dict[str, Any]]]) -> dict[str, Any]:
        outcomes = [o for batch in batches for o in batch]
        failed = sorted(o["org"] for o in outcomes if not o["trained"])
        summary = {
            "orgs": len(outcomes),
            "promoted": sorted(o["org"] for o in outcomes if o["promoted"]),
            "rejected": sorted(o["org"] for o in outcomes if o["trained"] and not o["gate_passed"]),
            "reused": sorted(o["org"] for o in outcomes if o.get("reused")),
            "failed": failed,
        }
        if outcomes and len(failed) == len(outcomes):
            raise RuntimeError(f"every org failed to train: {summary}")
        return summary

    report(train_batch.expand(orgs=org_batches()))


replies_daily_retrain()

"""Daily retrain of the hashtag-suggestion models (drafted posts), one model per org.

Spark preprocess of ``raw/posts`` (incremental) → per-org batches: skip-gram embeddings
of the org's posts, evaluated on its newest posts (hidden hashtags; one shown, the rest
hidden), model gates against production on the same posts, register as
``hashtags.<org>``, load the registered artifact back and ask it golden drafts, then
``staging`` → ``production`` (unless dry-run). A rejected or failed org keeps serving
its production version; roll back with the ``model_rollback`` DAG or
``socialsuggest models rollback hashtags.<org>``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from socialsuggest.alerts import on_failure

ORG = r"^[a-z0-9][a-z0-9_-]{0,62}$"
LAKE_WRITERS = "lake_writers"  # the 1-slot pool shared with deletions and retention


@dag(
    dag_id="hashtags_daily_retrain",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    on_failure_callback=on_failure,
    tags=["hashtags", "training"],
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
            description="empty = every org with processed posts",
        ),
        "dry_run": Param(False, type="boolean", title="Dry run (train and gate, no promotion)"),
        "orgs_per_task": Param(20, type="integer", minimum=1, maximum=500),
    },
)
def hashtags_daily_retrain() -> None:
    @task(pool=LAKE_WRITERS)  # never beside a deletion request rewriting the same files
    def preprocess() -> dict[str, Any]:
        import json

        from socialsuggest.config import load_settings
        from socialsuggest.lake import Lake
        from socialsuggest.processing.posts import preprocess_posts
        from socialsuggest.processing.spark import get_spark

        settings = load_settings()
        report = preprocess_posts(
            lambda: get_spark(settings), Lake.from_settings(settings), settings=settings
        )
        summary: dict[str, Any] = json.loads(json.dumps(report.summary(), default=str))
        return summary

    @task
    def org_batches() -> list[list[str]]:
        from socialsuggest.config import load_settings
        from socialsuggest.lake import Lake
        from socialsuggest.pipeline.hashtags_cycle import hashtag_orgs

        params = get_current_context()["params"]
        orgs = params.get("orgs") or hashtag_orgs(Lake.from_settings(load_settings()))
        size = int(params["orgs_per_task"])
        return [orgs[i : i + size] for i in range(0, len(orgs), size)]

    @task(max_active_tis_per_dag=1)
    def train_batch(orgs: list[str]) -> list[dict[str, Any]]:
        from dataclasses import asdict

        from socialsuggest.config import load_settings
        from socialsuggest.pipeline.hashtags_cycle import train_and_publish_hashtags
        from socialsuggest.registry import Registry

        settings = load_settings()
        params = get_current_context()["params"]
        outcomes = train_and_publish_hashtags(
            settings,
            Registry(settings.resolved_tracking_uri),
            orgs,
            dry_run=bool(params["dry_run"]),
            actor="airflow:hashtags_daily_retrain",
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

    batches = org_batches()
    preprocess() >> batches
    report(train_batch.expand(orgs=batches))


hashtags_daily_retrain()

"""Daily retrain of the tag-suggestion models, one registered model per org.

validate raw (Great Expectations) → Spark preprocess (incremental) → validate
processed → per-org batches: train, model gates, register, promote (unless dry-run).

Which orgs are retrained is the ``retrain`` param: ``changed`` (the schedule's default)
retrains an org whose production model is stale — tags created since its data window,
enough new data, other code or configuration, or older than the max age
(``training/policy.py``; thresholds from settings) — switches newly archived tags off in
production without a refit, and leaves the others serving; ``all`` retrains every org.

A failing suite stops the run before anything is trained, without retries (bad data
does not heal on retry): ``production`` is untouched, and the suite's result is in
MLflow's ``data-quality`` experiment and in the lake under ``audit/quality/<suite>/``
(both named in the error and the task's XCom). Preprocess takes the 1-slot
``lake_writers`` pool, shared with deletion requests and retention purges, so no
preprocessing reads a file a deletion is rewriting.

Per-org work is mapped over *batches* of orgs (``orgs_per_task``): one mapped task
per org is the clearest view for tens of orgs, but Airflow caps a mapping at
``max_map_length`` (1024) and every task instance costs scheduler work and a
process start; for thousands of orgs, batches of 50 keep the task count in the
hundreds while each batch's XCom still lists every org's verdict.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from socialsuggest.alerts import on_failure
from socialsuggest.family_dag import LAKE_WRITERS, ORG, PROCESSED_MESSAGES


def _window() -> tuple[Any, int, list[str] | None]:
    context = get_current_context()
    params = context["params"]
    if params.get("dt_to"):
        end = pendulum.parse(params["dt_to"]).date()
    else:  # a manual run without a logical date has no data interval: use when it ran
        interval_end = context.get("data_interval_end") or context["dag_run"].run_after
        end = interval_end.date()
    return end, int(params["days"]), params.get("orgs") or None


def _quality_gate(zone: Literal["raw", "processed"]) -> dict[str, Any]:
    """A failing suite fails the task at once: bad data does not heal on retry."""
    from socialsuggest.config import load_settings
    from socialsuggest.pipeline.data_quality import check_window
    from socialsuggest.quality.expectations import DataQualityError

    dt_to, days, orgs = _window()
    run = f"tags_daily_retrain/{get_current_context()['run_id']}"
    try:
        return check_window(load_settings(), zone, dt_to=dt_to, days=days, orgs=orgs, run=run)
    except DataQualityError as exc:
        raise AirflowFailException(str(exc)) from exc


@dag(
    dag_id="tags_daily_retrain",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # runs rewrite the same processed partitions and aliases
    # the daily run must finish well within its day: past this the run is failed and
    # the DAG-level callback alerts (Airflow 3 has no SLA misses any more)
    dagrun_timeout=timedelta(hours=6),
    on_failure_callback=on_failure,
    tags=["tags", "training"],
    doc_md=__doc__,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "on_failure_callback": on_failure,
    },
    params={
        "days": Param(30, type="integer", minimum=1, maximum=365, title="Window (days)"),
        "dt_to": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Window end",
            description="empty = the run's data interval end",
        ),
        "orgs": Param(
            [],
            type="array",
            items={"type": "string", "pattern": ORG},
            title="Org subset",
            description="empty = every org with processed data",
        ),
        "dry_run": Param(False, type="boolean", title="Dry run (train and gate, no promotion)"),
        "orgs_per_task": Param(1, type="integer", minimum=1, maximum=500),
        "retrain": Param(
            "changed",
            enum=["changed", "all"],
            title="Which orgs to retrain",
            description="changed = refit orgs whose model is stale (new tags, enough new data, "
            "code or config changed, older than the max age), switch newly archived tags off "
            "without a refit; all = refit every org",
        ),
    },
)
def tags_daily_retrain() -> None:
    @task
    def validate_raw() -> dict[str, Any]:
        return _quality_gate("raw")

    @task(pool=LAKE_WRITERS)  # never beside a deletion request rewriting the same files
    def preprocess() -> dict[str, Any]:
        import json

        from socialsuggest.config import load_settings
        from socialsuggest.lake import Lake
        from socialsuggest.processing.spark import get_spark
        from socialsuggest.processing.tags import preprocess_tags

        settings = load_settings()
        lake = Lake.from_settings(settings)
        report = preprocess_tags(lambda: get_spark(settings), lake, settings=settings)
        summary: dict[str, Any] = json.loads(json.dumps(report.summary(), default=str))
        return summary

    @task(outlets=[PROCESSED_MESSAGES])  # its success schedules replies_daily_retrain
    def validate_processed() -> dict[str, Any]:
        return _quality_gate("processed")

    @task
    def org_batches() -> list[list[str]]:
        from socialsuggest.config import load_settings
        from socialsuggest.lake import Lake
        from socialsuggest.training.fanout import processed_orgs

        _, _, wanted = _window()
        size = int(get_current_context()["params"]["orgs_per_task"])
        orgs = wanted or processed_orgs(Lake.from_settings(load_settings()))
        return [orgs[i : i + size] for i in range(0, len(orgs), size)]

    @task(max_active_tis_per_dag=1)  # each batch trains with every core
    def train_batch(orgs: list[str]) -> list[dict[str, Any]]:
        from dataclasses import asdict

        from socialsuggest.config import load_settings
        from socialsuggest.pipeline.tags_cycle import train_and_publish
        from socialsuggest.registry import Registry
        from socialsuggest.training.policy import RetrainPolicy

        settings = load_settings()
        params = get_current_context()["params"]
        registry = Registry(settings.resolved_tracking_uri)
        outcomes = train_and_publish(
            settings,
            registry,
            orgs,
            dry_run=bool(params["dry_run"]),
            actor="airflow:tags_daily_retrain",
            retrain=RetrainPolicy.from_settings(settings, params["retrain"]),
        )
        return [asdict(o) for o in outcomes]

    @task
    def report(batches: list[list[dict[str, Any]]]) -> dict[str, Any]:
        outcomes = [o for batch in batches for o in batch]
        failed = [
            o["org"]
            for o in outcomes
            if not o["trained"] and not o.get("fresh") and not o.get("waiting")
        ]
        summary = {
            "orgs": len(outcomes),
            "promoted": sorted(o["org"] for o in outcomes if o["promoted"]),
            "rejected": sorted(o["org"] for o in outcomes if o["trained"] and not o["gate_passed"]),
            # same data and code as an existing version (a re-run): nothing registered
            "reused": sorted(o["org"] for o in outcomes if o.get("reused")),
            # production still fresh (retrain policy): not retrained
            "fresh": sorted(o["org"] for o in outcomes if o.get("fresh")),
            # no production; latest candidate rejected, too little new data to retry
            "waiting": sorted(o["org"] for o in outcomes if o.get("waiting")),
            # only tags archived since production's window: switched off, no refit
            "archived_tags_off": sorted(
                o["org"] for o in outcomes if o["trained"] and not o.get("refit", True)
            ),
            "failed": sorted(failed),
        }
        if failed and len(failed) == len(outcomes):
            # AirflowFailException: no retry; the outcomes are read, a retry cannot change them
            raise AirflowFailException(f"every org failed to train: {summary}")
        return summary

    checked = validate_raw()
    processed = preprocess()
    quality = validate_processed()
    batches = org_batches()
    checked >> processed >> quality >> batches
    report(train_batch.expand(orgs=batches))


tags_daily_retrain()

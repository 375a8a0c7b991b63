"""The daily retrain DAG shape the hashtag and reply families share.

org batches → mapped per-batch train-and-publish → a report that fails the run only when
every org failed. Each family's DAG file keeps its id, schedule, tags, documentation and
calls :func:`per_org_retrain` for the rest, so the two DAGs cannot drift apart.
:func:`preprocess_posts` is the posts preprocess the hashtag retrain and the trend
detector share.

A top-level module importing only ``airflow.sdk`` and :mod:`socialsuggest.alerts`: DAG
files import it at parse time, when Spark, MLflow, scikit-learn, pandas and pyarrow must
not be imported (``tests/dags/test_dagbag.py``). For the same reason a family's orgs and
train functions are named by import path (``"module:function"``) and imported inside the
task that calls them.
"""

from __future__ import annotations

import importlib
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, Param, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from socialsuggest.alerts import on_failure

ORG = r"^[a-z0-9][a-z0-9_-]{0,62}$"
LAKE_WRITERS = "lake_writers"  # the 1-slot pool shared with deletions and retention

#: The messages ``tags_daily_retrain`` cleaned and validated (``processed/tags``). Its
#: ``validate_processed`` task updates the asset; a DAG that reads those messages (the
#: reply rankers) is scheduled on it rather than on the clock, so it never races the
#: preprocess that writes them.
PROCESSED_MESSAGES = Asset(name="processed_messages", uri="socialsuggest://lake/processed/tags")


def retrain_dag_args(orgs_help: str) -> dict[str, Any]:
    """Every ``@dag`` argument of a family's daily retrain but its id, schedule, tags and
    doc: start, retries, alerts, timeout and the Params (org subset, dry run, batch size).

    ``orgs_help`` says which orgs an empty subset means (the family's orgs function).
    """
    return {
        "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"),
        "catchup": False,
        "max_active_runs": 1,
        "dagrun_timeout": timedelta(hours=6),
        "on_failure_callback": on_failure,
        "default_args": {
            "retries": 2,
            "retry_delay": timedelta(minutes=1),
            "retry_exponential_backoff": True,
            "on_failure_callback": on_failure,
        },
        "params": {
            "orgs": Param(
                [],
                type="array",
                items={"type": "string", "pattern": ORG},
                title="Org subset",
                description=orgs_help,
            ),
            "dry_run": Param(False, type="boolean", title="Dry run (train and gate, no promotion)"),
            "orgs_per_task": Param(20, type="integer", minimum=1, maximum=500),
        },
    }


def preprocess_posts() -> Any:
    """Add the incremental Spark preprocess of ``raw/posts`` (→ ``processed/hashtags``) to
    the DAG being defined; returns its output. The hashtag retrain and the trend detector
    both start with it: whichever runs second that day finds nothing new to process. It
    holds the ``lake_writers`` slot, so it never runs beside a deletion request rewriting
    the same files."""

    @task(task_id="preprocess", pool=LAKE_WRITERS)
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

    return preprocess()


def _resolve(ref: str) -> Any:
    """``"package.module:function"`` → the function (imported in the task, not at parse)."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def per_org_retrain(*, all_orgs: str, train: str, after: Any = None) -> None:
    """Add the org batches, the mapped ``train_batch`` and the ``report`` tasks to the DAG
    being defined (call it inside a ``@dag`` function).

    ``all_orgs``: ``"module:function"`` of ``(lake) -> list[str]``, the orgs an empty
    subset means; ``train``: ``"module:function"`` of the family's train-and-publish
    (``(settings, registry, orgs, *, dry_run, actor) -> list[OrgOutcome]``); ``after``:
    a task (output) the org batches wait for, e.g. the preprocess that makes the orgs'
    data. Batches of one run train one at a time (``max_active_tis_per_dag=1``); the
    versions are registered by ``airflow:<dag_id>``.
    """

    @task
    def org_batches() -> list[list[str]]:
        from socialsuggest.config import load_settings
        from socialsuggest.lake import Lake

        params = get_current_context()["params"]
        selected = params.get("orgs") or _resolve(all_orgs)(Lake.from_settings(load_settings()))
        size = int(params["orgs_per_task"])
        return [selected[i : i + size] for i in range(0, len(selected), size)]

    @task(max_active_tis_per_dag=1)
    def train_batch(orgs: list[str]) -> list[dict[str, Any]]:
        from dataclasses import asdict

        from socialsuggest.config import load_settings
        from socialsuggest.registry import Registry

        settings = load_settings()
        context = get_current_context()
        outcomes = _resolve(train)(
            settings,
            Registry(settings.resolved_tracking_uri),
            orgs,
            dry_run=bool(context["params"]["dry_run"]),
            actor=f"airflow:{context['dag'].dag_id}",
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
            # AirflowFailException: no retry; the outcomes are read, a retry cannot change them
            raise AirflowFailException(f"every org failed to train: {summary}")
        return summary

    batches = org_batches()
    if after is not None:
        after >> batches
    trained: Any = train_batch.expand(orgs=batches)  # the batches' outcome lists, at run time
    report(trained)

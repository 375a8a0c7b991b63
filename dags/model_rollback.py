"""Roll ``production`` back: to the version it replaced, or to a chosen version.

The registry refuses a target that failed the gates, and an automatic target never
is a version trained on data a deletion request has since erased. The serving API
follows within its poll interval, without failing in-flight requests.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from socialsuggest.alerts import on_failure


@dag(
    dag_id="model_rollback",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["models", "registry"],
    doc_md=__doc__,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=15),
        "retry_exponential_backoff": True,
        "on_failure_callback": on_failure,
    },
    params={
        "family": Param(
            "tags",
            type="string",
            enum=["tags", "hashtags", "replies", "trends"],
            title="Model family",
        ),
        "org": Param(type="string", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", title="Org"),
        "version": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Target version",
            description="empty = the version production replaced",
        ),
        "reason": Param(type="string", minLength=3, maxLength=500, title="Reason"),
        "requester": Param(type="string", minLength=1, maxLength=200, title="Requested by"),
    },
)
def model_rollback() -> None:
    @task
    def rollback() -> dict[str, object]:
        from socialsuggest.config import load_settings
        from socialsuggest.registry import Registry, model_name

        params = get_current_context()["params"]
        registry = Registry(load_settings().resolved_tracking_uri)
        name = model_name(params["family"], params["org"])
        before = registry.version_by_alias(name, "production")
        info = registry.rollback(
            name, params.get("version"), actor=params["requester"], reason=params["reason"]
        )
        return {"model": name, "from": before.version if before else None, "to": info.version}

    rollback()


model_rollback()

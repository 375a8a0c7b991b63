"""Keep the GDPR catalog equal to the lake: index new objects, reconcile the rest.

Every 15 minutes the outbox the lake's writers leave is indexed (cheap: only new
records). Reconcile lists the whole lake, so it runs in the first run after midnight
UTC only; it repairs objects whose outbox record was lost (a writer killed between
data file and record) and documents whose file is gone.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task

from socialsuggest.alerts import on_failure


@dag(
    dag_id="gdpr_catalog_index",
    schedule="*/15 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["gdpr", "catalog"],
    doc_md=__doc__,
    default_args={
        "retries": 3,
        "retry_delay": timedelta(seconds=20),
        "retry_exponential_backoff": True,
        "on_failure_callback": on_failure,
    },
)
def gdpr_catalog_index() -> None:
    @task
    def index_outbox() -> dict[str, int]:
        from socialsuggest.catalog import open_catalog, sync_outbox
        from socialsuggest.config import load_settings
        from socialsuggest.lake import Lake

        settings = load_settings()
        with open_catalog(settings) as catalog:
            return sync_outbox(Lake.from_settings(settings), catalog).summary()

    @task
    def reconcile_daily(indexed: dict[str, int]) -> dict[str, int] | None:
        from socialsuggest.catalog import open_catalog, reconcile
        from socialsuggest.config import load_settings
        from socialsuggest.lake import Lake

        start = get_current_context()["data_interval_start"]
        if start is not None and (start.hour, start.minute) != (0, 0):
            return None  # only once a day: it lists every object of the lake
        settings = load_settings()
        with open_catalog(settings) as catalog:
            return reconcile(Lake.from_settings(settings), catalog).summary()

    reconcile_daily(index_outbox())


gdpr_catalog_index()

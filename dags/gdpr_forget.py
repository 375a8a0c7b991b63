"""GDPR deletion request: erase one data subject everywhere, verify, audit.

Trigger from the UI form with the subject id, the reason (ticket, legal basis) and who
asked. The task runs ``socialsuggest.privacy`` exactly as ``socialsuggest privacy
forget`` does: a retry (or a re-trigger) resumes an interrupted request, and a
request that is already done is reported as such. The task fails when verification
finds the subject anywhere. Its return value (XCom) holds the audit summary with the
keyed hash of the subject, never the id.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from socialsuggest.alerts import on_failure


@dag(
    dag_id="gdpr_forget",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # one request at a time: they rewrite the same files
    tags=["gdpr", "privacy"],
    doc_md=__doc__,
    default_args={
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "on_failure_callback": on_failure,
    },
    params={
        "subject_id": Param(
            type="string",
            minLength=1,
            maxLength=200,
            title="Subject id",
            description="the person's id as stored (author id, agent id)",
        ),
        "reason": Param(
            type="string",
            minLength=3,
            maxLength=500,
            title="Reason",
            description="ticket id and legal basis, kept in the audit record",
        ),
        "requester": Param(
            type="string",
            minLength=1,
            maxLength=200,
            title="Requested by",
            description="who asked (operator or DPO), kept in the audit record",
        ),
    },
)
def gdpr_forget() -> None:
    @task(pool="lake_writers")  # one lake rewriter at a time (see dags/README.md)
    def forget() -> dict[str, object]:
        from socialsuggest.config import load_settings
        from socialsuggest.privacy import open_privacy, reachable_tracking_uri

        params = get_current_context()["params"]
        settings = load_settings()
        privacy = open_privacy(settings, tracking_uri=reachable_tracking_uri(settings))
        reason = f"{params['reason']} (requested by {params['requester']})"
        return privacy.forget(params["subject_id"], reason=reason).summary()

    forget()


gdpr_forget()

"""Daily retrain of the suggested-replies rankers, one model per org.

Per org: labelled inbound messages -- from "saved reply chosen" events, or, before an
org has 30 of them, bootstrapped from its outgoing replies (DBSCAN clusters on
Levenshtein distance become templates; replies at fuzz 90+ are labelled, 70-90 wait for
a person: ``socialsuggest replies review-export|review-import``) -- then TF-IDF + LR
with majority down-sampling, macro F1 on the newest messages, gates against production
on the same messages, ``replies.<org>`` registered, loaded back and asked golden
messages, then ``staging`` -> ``production`` (unless dry-run).

It reads the messages ``tags_daily_retrain`` cleaned (``processed/tags``), so it is
scheduled on that data, not on the clock: a run starts once the tag retrain's
``validate_processed`` has passed (the ``processed_messages`` asset), daily with it and
after each manual tag run. On the clock it raced the preprocess: on the first day it
found nothing to train on, and on every later day it trained on yesterday's messages.
"""

from __future__ import annotations

from airflow.sdk import dag

from socialsuggest.family_dag import PROCESSED_MESSAGES, per_org_retrain, retrain_dag_args

CYCLE = "socialsuggest.pipeline.replies_cycle"


@dag(
    dag_id="replies_daily_retrain",
    schedule=[PROCESSED_MESSAGES],
    tags=["replies", "training"],
    doc_md=__doc__,
    **retrain_dag_args(orgs_help="empty = every org with reply choices or sent replies"),
)
def replies_daily_retrain() -> None:
    per_org_retrain(
        all_orgs=f"{CYCLE}:reply_orgs",
        train=f"{CYCLE}:train_and_publish_replies",
    )


replies_daily_retrain()

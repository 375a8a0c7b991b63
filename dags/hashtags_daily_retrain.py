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

from airflow.sdk import dag

from socialsuggest.family_dag import per_org_retrain, preprocess_posts, retrain_dag_args

CYCLE = "socialsuggest.pipeline.hashtags_cycle"


@dag(
    dag_id="hashtags_daily_retrain",
    schedule="@daily",
    tags=["hashtags", "training"],
    doc_md=__doc__,
    **retrain_dag_args(orgs_help="empty = every org with processed posts"),
)
def hashtags_daily_retrain() -> None:
    per_org_retrain(
        all_orgs=f"{CYCLE}:hashtag_orgs",
        train=f"{CYCLE}:train_and_publish_hashtags",
        after=preprocess_posts(),
    )


hashtags_daily_retrain()

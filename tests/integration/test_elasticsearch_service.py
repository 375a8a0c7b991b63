"""A real Elasticsearch from infra/elasticsearch.sh: the server the GDPR catalog (#5) uses.

Checks what the catalog will rely on, against the real server and the pinned client:
keyword mappings, bulk indexing, term search, delete by search + bulk (the integ-test
distribution has no reindex module, so no _delete_by_query), and a clean stop.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from elasticsearch import ApiError, Elasticsearch, helpers

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.services  # real servers started by infra/ scripts
# es_url / es_env: the session's Elasticsearch node (tests/integration/conftest.py)


def test_server_major_matches_the_pinned_client(es_url: str) -> None:
    import elasticsearch

    es = Elasticsearch(es_url, request_timeout=30)
    assert es.cluster.health()["status"] in ("green", "yellow")
    node = next(iter(es.nodes.info(node_id="_local", metric="_none")["nodes"].values()))
    assert node["version"].split(".")[0] == elasticsearch.__versionstr__.split(".")[0]


def test_keyword_index_bulk_search_and_delete_by_search(es_url: str) -> None:
    es = Elasticsearch(es_url, request_timeout=30)
    index = "lake-objects-smoke"
    es.options(ignore_status=404).indices.delete(index=index)
    es.indices.create(
        index=index,
        settings={"number_of_shards": 1, "number_of_replicas": 0},
        mappings={"properties": {"path": {"type": "keyword"}, "org": {"type": "keyword"},
                                 "subject_ids": {"type": "keyword"}, "rows": {"type": "integer"}}},
    )  # fmt: skip
    docs = (
        {"_index": index, "_id": f"raw/x/{i}.parquet",
         "_source": {"path": f"raw/x/{i}.parquet", "org": f"org{i % 4}",
                     "subject_ids": [f"au-{i % 10}", f"ag-{i % 3}"], "rows": i}}
        for i in range(1000)
    )  # fmt: skip
    indexed, errors = helpers.bulk(es, docs, refresh=True)
    assert indexed == 1000 and not errors
    hits = es.count(index=index, query={"term": {"subject_ids": "au-3"}})["count"]
    assert hits == 100
    with pytest.raises(ApiError):  # no reindex module in this distribution
        es.delete_by_query(index=index, query={"term": {"subject_ids": "au-3"}})
    ids = [
        h["_id"]
        for h in helpers.scan(es, index=index, query={"query": {"term": {"subject_ids": "au-3"}}})
    ]
    deleted, errors = helpers.bulk(
        es, ({"_op_type": "delete", "_index": index, "_id": i} for i in ids)
    )
    assert deleted == 100 and not errors
    es.indices.refresh(index=index)
    assert es.count(index=index)["count"] == 900
    assert es.count(index=index, query={"term": {"subject_ids": "au-3"}})["count"] == 0


def test_up_is_idempotent_and_status_reports(es_url: str, es_env: dict[str, str]) -> None:
    script = str(REPO / "infra" / "elasticsearch.sh")
    again = subprocess.run(
        ["bash", script, "up"], env=es_env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0 and es_url in again.stdout
    status = subprocess.run(
        ["bash", script, "status"], env=es_env, capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 0 and "running" in status.stdout

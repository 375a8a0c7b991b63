"""The hashtag family's whole cycle with real parts: Spark, an MLflow server, HTTP serving.

One module-scoped cycle (sample posts → ingest → Spark preprocess → per-org embeddings →
gates → family_registry → production) feeds every test; the API is a real uvicorn server
following the family_registry, so promotion and rollback are observed from outside.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from servers import running_app
from socialsuggest.config import Settings
from socialsuggest.lake import Lake
from socialsuggest.models.hashtags import HashtagModelConfig
from socialsuggest.pipeline import CycleSummary, run_cycle
from socialsuggest.pipeline.hashtags_cycle import hashtag_orgs, train_and_publish_hashtags
from socialsuggest.processing.posts import load_posts, preprocess_posts
from socialsuggest.registry import PRODUCTION, Registry
from socialsuggest.serving.app import create_app

ORGS = 3
#: Same model, another fingerprint: a new version on unchanged data.
NEXT_DAY = HashtagModelConfig(popular=21)
#: A much worse model on the same posts: no prior, one epoch (the gate must refuse it).
WORSE = HashtagModelConfig(prior_weight=0.0, epochs=1)


@pytest.fixture(scope="module")
def cycle(spark: Any, family_settings: Settings, family_registry: Registry) -> CycleSummary:
    return run_cycle(
        family_settings, orgs=ORGS, messages=4500, days=14, seed=11,
        registry=family_registry, families=("hashtags",),
    )  # fmt: skip


@pytest.fixture(scope="module")
def api(family_registry: Registry, cycle: CycleSummary) -> Iterator[str]:
    app = create_app(family_registry, poll_seconds=0.5)
    with running_app(app, ready=lambda r: bool(r.json().get("hashtag_models"))) as url:
        yield url


def _suggest(api: str, org: str, **body: Any) -> httpx.Response:
    payload = {"text": "who wins album of the year tonight", **body}
    return httpx.post(f"{api}/v1/orgs/{org}/hashtags:suggest", json=payload, timeout=10)


def _wait_for_version(api: str, org: str, version: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _suggest(api, org).json().get("model_version") == version:
            return
        time.sleep(0.2)
    raise AssertionError(f"the API did not switch {org} to hashtags v{version} in {timeout}s")


def test_every_org_is_trained_gated_registered_and_promoted(
    cycle: CycleSummary, family_registry: Registry
) -> None:
    assert cycle.hashtags is not None and cycle.tags is None
    outcomes = {o.org: o for o in cycle.hashtags.orgs}
    assert len(outcomes) == ORGS
    for org, outcome in outcomes.items():
        assert outcome.trained and outcome.promoted, outcome
        assert outcome.enabled_tags > 0 and outcome.integration_passed
        production = family_registry.version_by_alias(f"hashtags.{org}", PRODUCTION)
        assert production is not None and production.version == outcome.version
        tags = production.tags
        assert tags["gate.passed"] == "true" and tags["integration.passed"] == "true"
        assert tags["family"] == "hashtags" and tags["data.fingerprint"]
        assert tags["model.config_sha"] and tags["code_version"]
        assert tags["data_window.start"] <= tags["data_window.end"]
        run = family_registry.client.get_run(production.run_id)
        assert 0 < run.data.metrics["hidden.hybrid.ndcg_at_3"] <= 1
        files = {f.path for f in family_registry.client.list_artifacts(production.run_id)}
        assert "hashtags.csv" in files


def test_every_ingested_post_is_processed_once_and_a_rerun_has_nothing_to_do(
    cycle: CycleSummary, family_settings: Settings, spark: Any
) -> None:
    assert cycle.hashtags is not None
    lake = Lake.from_settings(family_settings)
    posts = cycle.rows("raw", "posts")  # the lake's, whichever family module ingested
    assert posts > 0
    assert sum(len(load_posts(lake, org)) for org in hashtag_orgs(lake)) == posts
    again = preprocess_posts(spark, lake, settings=family_settings)
    assert again.partitions_processed == 0 and again.rows_written == 0
    frame = load_posts(lake, hashtag_orgs(lake)[0])
    assert all(isinstance(w, list) for w in frame["words"])
    assert not any(h.startswith("#") for tags in frame["hashtags"] for h in tags)


def test_a_rerun_on_the_same_posts_registers_nothing(
    cycle: CycleSummary, family_settings: Settings, family_registry: Registry
) -> None:
    assert cycle.hashtags is not None
    counts = {
        o.org: len(family_registry.versions(f"hashtags.{o.org}")) for o in cycle.hashtags.orgs
    }
    again = train_and_publish_hashtags(family_settings, family_registry)
    for outcome in again:
        assert outcome.reused and not outcome.promoted, outcome
        assert len(family_registry.versions(f"hashtags.{outcome.org}")) == counts[outcome.org]


def test_the_api_suggests_known_hashtags_from_production(
    api: str, cycle: CycleSummary, family_registry: Registry
) -> None:
    assert cycle.hashtags is not None
    org = cycle.hashtags.orgs[0].org
    production = family_registry.version_by_alias(f"hashtags.{org}", PRODUCTION)
    assert production is not None
    model = family_registry.load_version(production).model
    response = _suggest(api, org, k=5, hashtags=["#NotOneWeKnow"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == f"hashtags.{org}" and body["model_version"] == production.version
    names = [s["hashtag"] for s in body["suggestions"]]
    assert len(names) == 5 and set(names) <= set(model.hashtags)
    known = model.hashtags[0]
    given = _suggest(api, org, text=f"tonight #{known}", k=3).json()["suggestions"]
    assert known not in [s["hashtag"] for s in given]
    assert given[0]["source"] == "cooccurrence"


def test_bad_requests_get_a_4xx_naming_the_field(api: str, cycle: CycleSummary) -> None:
    assert cycle.hashtags is not None
    org = cycle.hashtags.orgs[0].org
    response = _suggest(api, org, k=0)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["k"]
    missing = httpx.post(f"{api}/v1/orgs/{org}/hashtags:suggest", json={}, timeout=10)
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "text"
    unknown = _suggest(api, "no-such-org")
    assert unknown.status_code == 404 and "no production hashtags model" in unknown.text


def test_a_worse_candidate_is_rejected_and_production_keeps_serving(
    cycle: CycleSummary, family_settings: Settings, family_registry: Registry
) -> None:
    assert cycle.hashtags is not None
    org = cycle.hashtags.orgs[0].org
    before = family_registry.version_by_alias(f"hashtags.{org}", PRODUCTION)
    [outcome] = train_and_publish_hashtags(family_settings, family_registry, [org], config=WORSE)
    assert outcome.trained and not outcome.gate_passed and not outcome.promoted
    assert any("hidden.hybrid.ndcg_at_3" in r and "vs production" in r
               for r in outcome.gate_reasons), outcome.gate_reasons  # fmt: skip
    rejected = family_registry.version(f"hashtags.{org}", outcome.version)  # type: ignore[arg-type]
    assert rejected.tags["gate.passed"] == "false"
    assert family_registry.version_by_alias(f"hashtags.{org}", PRODUCTION) == before


def test_promotion_and_rollback_reach_the_api(
    api: str, cycle: CycleSummary, family_settings: Settings, family_registry: Registry
) -> None:
    assert cycle.hashtags is not None
    org = cycle.hashtags.orgs[1].org
    name = f"hashtags.{org}"
    first = family_registry.version_by_alias(name, PRODUCTION)
    assert first is not None
    [outcome] = train_and_publish_hashtags(family_settings, family_registry, [org], config=NEXT_DAY)
    assert outcome.promoted and outcome.version != first.version, outcome
    _wait_for_version(api, org, outcome.version)  # type: ignore[arg-type]
    family_registry.rollback(name, actor="test", reason="bad hashtags reported")
    _wait_for_version(api, org, first.version)
    assert family_registry.version_by_alias(name, PRODUCTION).version == first.version  # type: ignore[union-attr]

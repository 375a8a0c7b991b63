"""The trends family with real parts: Spark (posts), an MLflow server, the HTTP API.

The detector is gated on the reference tweets and registered as ``trends.global``; a
worse config is refused; a new equal config is promoted and rolled back; the lists
it computes over the lake's posts are served on ``GET /v1/trends``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from socialsuggest.config import Settings, load_settings
from socialsuggest.lake import Lake
from socialsuggest.models.trends import TrendConfig
from socialsuggest.pipeline import run_cycle, trends_cycle
from socialsuggest.pipeline.trends_cycle import TrendsReport, publish_detector, run_trends_cycle
from socialsuggest.processing.posts import preprocess_posts
from socialsuggest.registry import PRODUCTION, Registry
from socialsuggest.serving.app import create_app
from socialsuggest.serving.trends import RESULTS_KEY, TrendsFeed

NAME = "trends.global"


@pytest.fixture(scope="module")
def cycle(spark: Any, family_settings: Settings, family_registry: Registry) -> TrendsReport:
    run_cycle(
        family_settings,
        orgs=3,
        messages=4500,
        days=14,
        seed=11,
        registry=family_registry,
        families=(),
    )  # fmt: skip  (the family modules' shared sample)
    preprocess_posts(spark, Lake.from_settings(family_settings), settings=family_settings)
    return run_trends_cycle(family_settings, family_registry)


@pytest.fixture(scope="module")
def client(
    family_registry: Registry, family_settings: Settings, cycle: TrendsReport
) -> Iterator[TestClient]:
    app = create_app(
        family_registry, poll_seconds=60, trends=TrendsFeed(Lake.from_settings(family_settings))
    )
    with TestClient(app) as test_client:
        yield test_client


def test_the_detector_is_gated_on_real_tweets_and_serves_as_production(
    cycle: TrendsReport, family_registry: Registry
) -> None:
    assert cycle.detector is not None and cycle.detector.promoted, cycle.detector
    production = family_registry.version_by_alias(NAME, PRODUCTION)
    assert production is not None and production.version == cycle.model_version
    assert production.tags["gate.passed"] == "true" and production.tags["reference"]
    run = family_registry.client.get_run(production.run_id)
    assert run.data.metrics["precision"] >= 0.6 and run.data.metrics["recall"] >= 0.8
    assert cycle.posts > 0 and "all" in cycle.segments


def test_lists_are_written_for_every_segment_without_personal_data(
    cycle: TrendsReport, family_settings: Settings
) -> None:
    import json

    lake = Lake.from_settings(family_settings)
    doc = json.loads(lake.storage.get(RESULTS_KEY))
    assert doc["model"] == NAME and doc["model_version"] == cycle.model_version
    assert set(doc["segments"]) >= {"all"} and len(doc["segments"]) > 1  # per network too
    text = json.dumps(doc)
    assert "author_id" not in text and "post_id" not in text and "org_id" not in text


def test_the_api_serves_the_newest_lists(client: TestClient, cycle: TrendsReport) -> None:
    response = client.get("/v1/trends", params={"limit": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["segment"] == "all" and body["model_version"] == cycle.model_version
    assert "all" in body["segments"] and len(body["trends"]) <= 5
    other = next(s for s in body["segments"] if s != "all")
    assert client.get("/v1/trends", params={"segment": other}).status_code == 200
    missing = client.get("/v1/trends", params={"segment": "myspace"})
    assert missing.status_code == 404 and "known:" in missing.json()["detail"]
    assert client.get("/v1/trends", params={"limit": 0}).status_code == 422


def test_no_lists_yet_is_a_503(family_registry: Registry, tmp_path: Path) -> None:
    lake = Lake.from_settings(load_settings(home=tmp_path))
    with TestClient(create_app(family_registry, poll_seconds=60, trends=TrendsFeed(lake))) as empty:
        response = empty.get("/v1/trends")
    assert response.status_code == 503 and "trends_hourly" in response.json()["detail"]


def test_a_worse_detector_is_refused_and_an_equal_one_promoted_then_rolled_back(
    cycle: TrendsReport,
    family_settings: Settings,
    family_registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = family_registry.version_by_alias(NAME, PRODUCTION)
    assert first is not None
    with monkeypatch.context() as m:  # the hourly re-check reuses BEFORE reading anything
        m.setattr(trends_cycle, "load_reference", lambda *_: pytest.fail("scored again"))
        again = publish_detector(family_settings, family_registry)  # same config and code
    assert again.reused and family_registry.version_by_alias(NAME, PRODUCTION) == first
    worse = publish_detector(
        family_settings, family_registry, config=TrendConfig(min_diversity=0.0)
    )
    assert not worse.gate_passed and any("precision" in r for r in worse.gate_reasons)
    assert family_registry.version_by_alias(NAME, PRODUCTION) == first
    equal = publish_detector(
        family_settings, family_registry, config=replace(TrendConfig(), top_n=25)
    )
    assert equal.promoted and equal.version != first.version
    family_registry.rollback(NAME, actor="test", reason="lists looked wrong")
    assert family_registry.version_by_alias(NAME, PRODUCTION).version == first.version  # type: ignore[union-attr]


def test_the_deployments_latency_budget_reaches_the_gate_and_a_late_version_says_rejected(
    cycle: TrendsReport, family_settings: Settings, family_registry: Registry
) -> None:
    """``SOCIALSUGGEST_GATE_LATENCY_BUDGET_MS`` is what the integration gate holds the
    registered artifact to; a version it turns down after registration is described as
    rejected in the registry, not left as "accepted by the gates"."""
    before = family_registry.version_by_alias(NAME, PRODUCTION)
    impossible = family_settings.model_copy(update={"gate_latency_budget_ms": 1e-6})
    late = publish_detector(impossible, family_registry, config=replace(TrendConfig(), top_n=24))
    assert late.version is not None and late.integration_passed is False, late
    assert not late.promoted and any("budget 1e-06 ms" in r for r in late.gate_reasons), late
    assert family_registry.version_by_alias(NAME, PRODUCTION) == before
    registered = family_registry.client.get_model_version(NAME, str(late.version))
    assert registered.tags["gate.passed"] == "false"
    # one golden request, but the budget judged warm answers, not its first, cold one
    assert int(registered.tags["integration.timed"]) >= 5
    assert registered.description.startswith("REJECTED: ") and "latency: p95" in (
        registered.description
    )

"""The suggested-replies family's cycle with real parts: Spark, an MLflow server, HTTP.

Sample data where two orgs record "saved reply chosen" events and one has not adopted
saved replies yet (its agents only type replies): the first two learn from choices,
the third from its bootstrapped templates; all three are registered, promoted and
answer on ``POST /v1/orgs/{org}/replies:rank``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from servers import running_app
from socialsuggest.config import Settings
from socialsuggest.lake import Lake
from socialsuggest.pipeline import run_cycle
from socialsuggest.pipeline.replies_cycle import (
    RepliesCycleReport,
    run_replies_cycle,
    train_and_publish_replies,
)
from socialsuggest.processing.tags import preprocess_tags
from socialsuggest.registry import PRODUCTION, Registry
from socialsuggest.sampledata.generator import uses_saved_replies
from socialsuggest.serving.app import create_app

ORGS = 3


@pytest.fixture(scope="module")
def cycle(spark: Any, family_settings: Settings, family_registry: Registry) -> RepliesCycleReport:
    # ingest only, then the messages cleaned by the tag family's Spark job (no tag models)
    run_cycle(family_settings, orgs=ORGS, messages=4500, days=14, seed=11, registry=family_registry,
              families=())  # fmt: skip
    preprocess_tags(spark, Lake.from_settings(family_settings), settings=family_settings)
    return run_replies_cycle(family_settings, family_registry)


@pytest.fixture(scope="module")
def api(family_registry: Registry, cycle: RepliesCycleReport) -> Iterator[str]:
    app = create_app(family_registry, poll_seconds=0.5)
    with running_app(app, ready=lambda r: len(r.json().get("reply_models", {})) == ORGS) as url:
        yield url


def _rank(api: str, org: str, **body: Any) -> httpx.Response:
    payload = {"text": "my order still has not arrived, where is it?", **body}
    return httpx.post(f"{api}/v1/orgs/{org}/replies:rank", json=payload, timeout=10)


def test_orgs_learn_from_choices_or_from_bootstrapped_templates(
    cycle: RepliesCycleReport, family_registry: Registry
) -> None:
    assert len(cycle.orgs) == ORGS
    sources = {}
    for outcome in cycle.orgs:
        assert outcome.trained and outcome.promoted and outcome.integration_passed, outcome
        production = family_registry.version_by_alias(f"replies.{outcome.org}", PRODUCTION)
        assert production is not None and production.version == outcome.version
        assert production.tags["gate.passed"] == "true"
        sources[outcome.org] = production.tags["labels.source"]
        expected = "chosen" if uses_saved_replies(outcome.org) else "bootstrap"
        assert sources[outcome.org] == expected, outcome.org
        run = family_registry.client.get_run(production.run_id)
        assert 0 < run.data.metrics["macro_f1"] <= 1
        assert run.data.metrics["hit_rate_at_3"] >= run.data.metrics["accuracy_at_1"]
    assert set(sources.values()) == {"chosen", "bootstrap"}  # the sample has both kinds


def test_the_api_ranks_the_production_models_replies(
    api: str, cycle: RepliesCycleReport, family_registry: Registry
) -> None:
    for outcome in cycle.orgs:
        production = family_registry.version_by_alias(f"replies.{outcome.org}", PRODUCTION)
        assert production is not None
        model = family_registry.load_version(production).model
        body = _rank(api, outcome.org, k=3).json()
        assert body["model_version"] == production.version
        ids = [r["reply_id"] for r in body["replies"]]
        assert len(ids) == 3 and set(ids) <= set(model.replies)
        scores = [r["score"] for r in body["replies"]]
        assert scores == sorted(scores, reverse=True) and sum(scores) <= 1.0 + 1e-6
        if body["label_source"] == "bootstrap":  # templates come with their text
            assert all(r["text"] and r["reply_id"].startswith("tpl-") for r in body["replies"])
            assert any("<name>" in r["text"] for r in body["replies"])
        else:
            assert all(r["reply_id"].startswith("reply-") for r in body["replies"])


def test_bad_requests_and_unknown_orgs_get_4xx(api: str, cycle: RepliesCycleReport) -> None:
    org = cycle.orgs[0].org
    bad = _rank(api, org, k=0)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "k"
    extra = _rank(api, org, tone="friendly")
    assert extra.status_code == 422 and extra.json()["errors"][0]["field"] == "tone"
    missing = _rank(api, "no-such-org")
    assert missing.status_code == 404 and "no production replies model" in missing.text


def test_a_rerun_registers_nothing(
    cycle: RepliesCycleReport, family_settings: Settings, family_registry: Registry
) -> None:
    counts = {o.org: len(family_registry.versions(f"replies.{o.org}")) for o in cycle.orgs}
    for outcome in train_and_publish_replies(family_settings, family_registry):
        assert outcome.reused and not outcome.promoted, outcome
        assert len(family_registry.versions(f"replies.{outcome.org}")) == counts[outcome.org]

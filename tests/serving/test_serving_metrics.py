"""``GET /metrics`` of a real app on a real socket, after real traffic.

(Not ``test_metrics.py``: ``tests/unit/test_metrics.py`` exists, and pytest's default
import mode cannot collect two test modules with one basename.)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from socialsuggest.config import load_settings
from socialsuggest.lake import Lake
from socialsuggest.registry import PRODUCTION, Registry
from socialsuggest.serving import RequestLog
from socialsuggest.serving.app import create_app
from socialsuggest.serving.cache import ModelCache, ReloadEvent

SUGGEST = "/v1/orgs/{org}/tags:suggest"
FEEDBACK = "/v1/orgs/{org}/feedback"


def samples(exposition: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample called ``name``."""
    return [
        (dict(s.labels), s.value)
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
        if s.name == name
    ]


def by_labels(exposition: str, name: str, *keys: str) -> dict[tuple[str, ...], float]:
    """``name``'s samples keyed by the given labels' values (summed over the others)."""
    found: dict[tuple[str, ...], float] = {}
    for labels, value in samples(exposition, name):
        key = tuple(labels[k] for k in keys)
        found[key] = found.get(key, 0.0) + value
    return found


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the app's request log and the cache's alerts go (never the checkout's ./var)."""
    monkeypatch.setenv("SOCIALSUGGEST_HOME", str(tmp_path / "var"))
    return tmp_path / "var"


def logged_app(registry: Registry, home: Path) -> FastAPI:
    lake = Lake.from_settings(load_settings(home=home))
    return create_app(registry, request_log=RequestLog(lake, flush_seconds=3600))


def test_requests_are_counted_by_route_template_and_status_without_personal_data(
    serving_registry: Registry, orgs: list[str], serve: Callable[[FastAPI], str], home: Path
) -> None:
    url = serve(logged_app(serving_registry, home))
    marker = uuid.uuid4().hex
    personal = {
        "text": f"where is my parcel {marker}",
        "author_id": f"author-{marker}",
        "agent_id": f"agent-{marker}",
    }
    with httpx.Client(base_url=url, timeout=30) as client:
        served = [
            client.post(f"/v1/orgs/{org}/tags:suggest", json=personal)
            for org in (orgs[0], orgs[0], orgs[0], orgs[1])
        ]
        assert [r.status_code for r in served] == [200] * 4, served[0].text
        no_model = client.post(f"/v1/orgs/nomodel-{marker[:12]}/tags:suggest", json=personal)
        bad_org = client.post(f"/v1/orgs/Bad.{marker}/tags:suggest", json=personal)
        invalid = client.post(f"/v1/orgs/{orgs[0]}/tags:suggest", json={**personal, "k": 0})
        wrong_method = client.get(f"/v1/orgs/{orgs[0]}/tags:suggest")
        unrouted = client.get(f"/no-such-page/{marker}")
        first = served[0].json()
        feedback = client.post(
            f"/v1/orgs/{orgs[0]}/feedback",
            json={
                "request_id": first["request_id"],
                "accepted": [first["suggestions"][0]["tag"]],
                "agent_id": personal["agent_id"],
            },
        )
        assert (no_model.status_code, bad_org.status_code, invalid.status_code) == (404, 400, 422)
        assert (wrong_method.status_code, unrouted.status_code, feedback.status_code) == (
            405, 404, 202,
        )  # fmt: skip
        scraped = client.get("/metrics")

    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert marker not in text  # no message text, author/agent id, raw path or invented org

    counts = by_labels(text, "socialsuggest_http_requests_total", "method", "route", "status")
    assert counts[("POST", SUGGEST, "200")] == 4
    assert counts[("POST", SUGGEST, "404")] == 1
    assert counts[("POST", SUGGEST, "400")] == 1
    assert counts[("POST", SUGGEST, "422")] == 1
    assert counts[("GET", SUGGEST, "405")] == 1
    assert counts[("GET", "unmatched", "404")] == 1
    assert counts[("POST", FEEDBACK, "202")] == 1
    documented = set(httpx.get(f"{url}/openapi.json", timeout=10).json()["paths"])
    assert {route for _, route, _ in counts} <= documented | {"/metrics", "unmatched"}

    histogram = "socialsuggest_http_request_duration_seconds"
    timed = by_labels(text, f"{histogram}_count", "method", "route", "status")
    assert timed[("POST", SUGGEST, "200")] == 4 and timed[("POST", FEEDBACK, "202")] == 1
    buckets = {
        labels["le"]: value
        for labels, value in samples(text, f"{histogram}_bucket")
        if (labels["method"], labels["route"], labels["status"]) == ("POST", SUGGEST, "200")
    }
    assert buckets["+Inf"] == 4 and list(buckets.values()) == sorted(buckets.values())

    loaded = by_labels(text, "socialsuggest_model_loaded_version", "family", "org")
    reloads = by_labels(text, "socialsuggest_model_reloads_total", "family", "org", "outcome")
    for org in orgs:
        production = serving_registry.version_by_alias(f"tags.{org}", PRODUCTION)
        assert production is not None
        assert loaded[("tags", org)] == production.version
        assert reloads[("tags", org, "ok")] == 1  # the first load at startup

    shown = by_labels(text, "socialsuggest_suggestions_shown_total", "org")
    assert shown[(orgs[0],)] == sum(len(r.json()["suggestions"]) for r in served[:3])
    assert shown[(orgs[1],)] == len(served[3].json()["suggestions"])
    accepted = by_labels(text, "socialsuggest_suggestions_accepted_total", "org")
    assert accepted[(orgs[0],)] == 1 and accepted.get((orgs[1],), 0) == 0
    assert by_labels(text, "socialsuggest_feedback_total", "outcome") == {
        ("matched",): 1,
        ("unknown_request",): 0,
    }


def test_two_apps_in_one_process_count_separately(
    serving_registry: Registry, orgs: list[str], serve: Callable[[FastAPI], str], home: Path
) -> None:
    one = serve(logged_app(serving_registry, home))
    two = serve(logged_app(serving_registry, home))  # its own registry: no clash of names
    for _ in range(3):
        assert httpx.get(f"{one}/readyz", timeout=10).status_code == 200
    assert httpx.get(f"{two}/readyz", timeout=10).status_code == 200

    def readyz(url: str) -> float:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        return by_labels(text, "socialsuggest_http_requests_total", "route")[("/readyz",)]

    assert (readyz(one), readyz(two)) == (3, 1)


@pytest.fixture
def family(serving_registry: Registry, orgs: list[str]) -> Iterator[str]:
    """A model family of this test alone: ``<family>.good`` (the production artifact of
    ``orgs[0]``, registered again) and ``<family>.broken`` (an artifact that is not there).
    No serving app of another test follows this family; removed afterwards."""
    client = serving_registry.client
    family = "metrics" + uuid.uuid4().hex[:8]
    source = serving_registry.version_by_alias(f"tags.{orgs[0]}", PRODUCTION)
    assert source is not None
    run = client.create_run(client.get_experiment_by_name("Default").experiment_id)
    client.create_registered_model(f"{family}.broken")
    broken = client.create_model_version(
        f"{family}.broken", source=f"{run.info.artifact_uri}/no-model-here", run_id=run.info.run_id
    )
    client.set_registered_model_alias(f"{family}.broken", PRODUCTION, broken.version)
    good = client.copy_model_version(f"models:/{source.name}/{source.version}", f"{family}.good")
    client.set_registered_model_alias(f"{family}.good", PRODUCTION, good.version)
    yield family
    for org in ("good", "broken"):
        client.delete_registered_model(f"{family}.{org}")


def test_reloads_are_counted_by_outcome_and_an_existing_callback_still_runs(
    serving_registry: Registry, family: str, serve: Callable[[FastAPI], str], home: Path
) -> None:
    seen: list[ReloadEvent] = []
    cache = ModelCache(serving_registry, family=family, on_reload=seen.append)
    url = serve(create_app(serving_registry, family=family, cache=cache))
    events = cache.refresh()  # the app does not poll a cache it is given: refresh by hand
    text = httpx.get(f"{url}/metrics", timeout=10).text

    assert sorted((e.name, e.ok) for e in events) == [
        (f"{family}.broken", False),
        (f"{family}.good", True),
    ]
    assert sorted((e.name, e.ok) for e in seen) == sorted((e.name, e.ok) for e in events)
    reloads = by_labels(text, "socialsuggest_model_reloads_total", "family", "org", "outcome")
    assert reloads == {(family, "good", "ok"): 1, (family, "broken", "failed"): 1}
    loaded = by_labels(text, "socialsuggest_model_loaded_version", "family", "org")
    assert loaded == {(family, "good"): 1}  # the broken one serves nothing

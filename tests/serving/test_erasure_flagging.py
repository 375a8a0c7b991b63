"""A deletion request flags the models trained on the erased data: every family's
versions of the request's orgs registered before it started, and nothing else.

Against the real MLflow server of the serving group. Flagging searches model versions
per org instead of listing every registered model, so these tests also pin what the
``LIKE`` search could get wrong: ``_`` in an org id is a wildcard there.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from socialsuggest.registry import Registry
from socialsuggest.registry.registry import ERASED_TAG, ERASURE_REQUESTS_TAG

pytestmark = [pytest.mark.slow]


@pytest.fixture
def names(serving_registry: Registry) -> Iterator[dict[str, str]]:
    """Models of two orgs whose ids differ only where LIKE sees a wildcard, in two
    families each, plus one of a third org; deleted afterwards."""
    tag = uuid.uuid4().hex[:8]
    orgs = {"target": f"e{tag}_x", "lookalike": f"e{tag}yx", "other": f"e{tag}z"}
    models = {
        "tags": f"tags.{orgs['target']}",
        "replies": f"replies.{orgs['target']}",
        "lookalike": f"tags.{orgs['lookalike']}",
        "other": f"tags.{orgs['other']}",
    }
    client = serving_registry.client
    for name in models.values():
        client.create_registered_model(name)
    yield {**orgs, **{f"model_{k}": v for k, v in models.items()}}
    for name in models.values():
        client.delete_registered_model(name)


def _register(registry: Registry, name: str) -> int:
    client = registry.client
    run = client.create_run(client.get_experiment_by_name("Default").experiment_id)
    mv = client.create_model_version(name, source=f"{run.info.artifact_uri}/model",
                                     run_id=run.info.run_id)  # fmt: skip
    return int(mv.version)


def _tags(registry: Registry, name: str, version: int) -> dict[str, Any]:
    return registry.version(name, version).tags


def test_a_request_flags_its_orgs_versions_from_before_it_in_every_family(
    serving_registry: Registry, names: dict[str, str]
) -> None:
    registry = serving_registry
    before_request = {
        key: [_register(registry, names[key]), _register(registry, names[key])]
        for key in ("model_tags", "model_replies", "model_lookalike", "model_other")
    }
    time.sleep(1.1)  # the cutoff falls strictly between the versions
    started = datetime.now(UTC).isoformat()
    time.sleep(1.1)
    after_request = _register(registry, names["model_tags"])

    flagged = registry.mark_trained_on_erased_data([names["target"]], "req-1", started)

    expected = [
        f"{names[key]}/{v}" for key in ("model_replies", "model_tags") for v in before_request[key]
    ]
    assert flagged == expected
    for key in ("model_tags", "model_replies"):
        for version in before_request[key]:
            tags = _tags(registry, names[key], version)
            assert tags[ERASED_TAG] == "true" and tags[ERASURE_REQUESTS_TAG] == "req-1"
    # registered after the request started: trained without the erased rows
    assert ERASED_TAG not in _tags(registry, names["model_tags"], after_request)
    # an org whose id matches the LIKE pattern but is not the request's org
    for key in ("model_lookalike", "model_other"):
        for version in before_request[key]:
            assert ERASED_TAG not in _tags(registry, names[key], version)


def test_flagging_again_adds_only_new_requests_and_lists_each_once(
    serving_registry: Registry, names: dict[str, str]
) -> None:
    registry = serving_registry
    version = _register(registry, names["model_tags"])
    time.sleep(1.1)
    started = datetime.now(UTC).isoformat()
    name = names["model_tags"]

    first = registry.mark_trained_on_erased_data([names["target"]], ["req-1", "req-2"], started)
    again = registry.mark_trained_on_erased_data([names["target"]], ["req-2", "req-3"], started)
    repeat = registry.mark_trained_on_erased_data([names["target"]], "req-3", started)

    assert first == again == repeat == [f"{name}/{version}"]
    assert _tags(registry, name, version)[ERASURE_REQUESTS_TAG] == "req-1,req-2,req-3"


def test_flagging_does_not_list_every_registered_model(
    serving_registry: Registry, names: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cost of a request is one version search per org, whatever else the registry
    holds (a spy: the calls still reach the real server)."""
    registry = serving_registry
    _register(registry, names["model_tags"])
    time.sleep(1.1)
    started = datetime.now(UTC).isoformat()
    calls: list[str] = []
    search_versions = registry.client.search_model_versions
    search_models = registry.client.search_registered_models

    def spy_versions(*args: Any, **kwargs: Any) -> Any:
        calls.append("search_model_versions")
        return search_versions(*args, **kwargs)

    def spy_models(*args: Any, **kwargs: Any) -> Any:
        calls.append("search_registered_models")
        return search_models(*args, **kwargs)

    monkeypatch.setattr(registry.client, "search_model_versions", spy_versions)
    monkeypatch.setattr(registry.client, "search_registered_models", spy_models)
    flagged = registry.mark_trained_on_erased_data(
        [names["target"], names["other"]], "req-9", started
    )
    assert calls == ["search_model_versions", "search_model_versions"]
    assert [f.rsplit("/", 1)[0] for f in flagged] == [names["model_tags"]]


def test_an_org_id_that_is_not_one_is_refused(serving_registry: Registry) -> None:
    with pytest.raises(ValueError, match="org: \"x' OR name LIKE '%\" is not an org id"):
        serving_registry.mark_trained_on_erased_data(
            ["x' OR name LIKE '%"], "req-1", datetime.now(UTC).isoformat()
        )

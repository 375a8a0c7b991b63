"""Bad input never breaks the API: property tests from its own OpenAPI schema.

Schemathesis generates requests (valid and invalid) for every operation the served
app documents -- routes added later included -- and checks that none gets a 5xx.
The app is the production shape: a key store (org routes get the org's key and that
org in the path, so generated bodies reach a real model), a request log on a lake of
the test's own, uvicorn over real HTTP. Examples are bounded so the module stays fast.

Oversized bodies are refused with 413 before anything parses them, declared
(Content-Length) or streamed (chunked); a too-long text is a 422 naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from socialsuggest.config import load_settings
from socialsuggest.lake import Lake
from socialsuggest.registry import Registry
from socialsuggest.serving import RequestLog
from socialsuggest.serving.app import create_app
from socialsuggest.serving.auth import KeyStore
from socialsuggest.serving.limits import DEFAULT_MAX_BODY_BYTES
from socialsuggest.serving.trends import RESULTS_KEY, TrendsFeed

ADMIN = "admin-properties-" + "k" * 32
Serve = Callable[[FastAPI], str]


@dataclass
class Api:
    url: str
    org: str
    key: str


@pytest.fixture
def api(orgs: list[str], serving_registry: Registry, serve: Serve, tmp_path: Path) -> Api:
    store = KeyStore(tmp_path / "keys.json", admin_key=ADMIN)
    _, key = store.create(orgs[0])
    lake = Lake.from_settings(load_settings(home=tmp_path))
    log = RequestLog(lake, flush_seconds=3600)
    lists = {"generated_at": "2026-11-30T10:05:00+00:00", "model": "trends.global",
             "model_version": 1, "window": {"start": "2026-11-30T10:00:00+00:00", "hours": 1},
             "segments": {"all": [{"hashtag": "launch", "score": 7.5, "volume": 40.0,
                                   "baseline": 2.0, "peak_at": "2026-11-30T10:00:00+00:00",
                                   "members": ["launch2026"], "segment": "all"}]}}  # fmt: skip
    lake.storage.put(RESULTS_KEY, json.dumps(lists).encode())  # what trends_hourly writes
    app = create_app(serving_registry, request_log=log, keys=store, trends=TrendsFeed(lake))
    return Api(serve(app), orgs[0], key)


def _fuzz(api: Api, mode: GenerationMode, *, as_admin: bool, max_examples: int) -> list[str]:
    """Generate requests for every documented operation; fail on any 5xx.

    The schema is the served app's own, so routes added later are fuzzed too. With the
    org's key, org routes are called for that org (bodies reach its model); with the
    admin key, org ids are generated as well. Returns the operations exercised.
    """
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    exercised = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the schema itself is valid
        operation = result.ok()
        inputs = (operation.path_parameters, operation.query, operation.headers, operation.body)
        if mode == GenerationMode.NEGATIVE and not any(len(i) for i in inputs):
            continue  # nothing to make invalid (/healthz, /metrics, …)
        org_route = "{org}" in operation.path
        if as_admin:
            headers, fixed = {"Authorization": f"Bearer {ADMIN}"}, None
        else:
            headers = {"Authorization": f"Bearer {api.key}"} if org_route else {}
            fixed = {"org": api.org} if org_route else None
        _no_server_error(
            operation.as_strategy(mode, path_parameters=fixed), api.url, headers, max_examples
        )
        exercised.append(operation.label)
    return exercised


def _no_server_error(
    strategy: SearchStrategy[schemathesis.Case[Any]],
    url: str,
    headers: dict[str, str],
    max_examples: int,
) -> None:
    @given(case=strategy)
    @settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(base_url=url, headers=headers, checks=[not_a_server_error])

    check()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_gets_a_server_error(api: Api, mode: GenerationMode) -> None:
    exercised = _fuzz(api, mode, as_admin=False, max_examples=25)
    assert {"POST /v1/orgs/{org}/tags:suggest", "POST /v1/orgs/{org}/feedback"} <= set(exercised)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_org_or_request_gets_a_server_error_with_the_admin_key(
    api: Api, mode: GenerationMode
) -> None:
    assert _fuzz(api, mode, as_admin=True, max_examples=10)


@pytest.fixture
def suggest(api: Api) -> tuple[str, dict[str, str]]:
    return f"{api.url}/v1/orgs/{api.org}/tags:suggest", {"Authorization": f"Bearer {api.key}"}


def test_a_one_mebibyte_body_is_refused_with_413_before_parsing(
    suggest: tuple[str, dict[str, str]],
) -> None:
    url, headers = suggest
    body = b'{"text": "' + b"a" * (1 << 20) + b'"}'
    answer = httpx.post(
        url, content=body, headers={**headers, "content-type": "application/json"}, timeout=30
    )
    assert answer.status_code == 413, answer.text
    assert str(DEFAULT_MAX_BODY_BYTES) in answer.json()["detail"]
    # not even the auth guard ran: no key, same answer
    anonymous = httpx.post(url, content=body, headers={"content-type": "application/json"})
    assert anonymous.status_code == 413


def test_a_streamed_body_without_content_length_is_cut_off_with_413(
    suggest: tuple[str, dict[str, str]],
) -> None:
    url, headers = suggest

    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(64):
            yield b"b" * 16_384  # 1 MiB in all, never announced
        yield b'"}'

    answer = httpx.post(
        url, content=chunks(), headers={**headers, "content-type": "application/json"}, timeout=30
    )
    assert answer.status_code == 413, answer.text
    assert "too large" in answer.json()["detail"]


def test_the_largest_valid_request_fits_under_the_limit(
    suggest: tuple[str, dict[str, str]],
) -> None:
    """10,000 emoji, escaped the way json.dumps does by default (12 bytes each)."""
    url, headers = suggest
    body = json.dumps({"text": "\U0001f35e" * 10_000, "k": 20}).encode()
    assert 100_000 < len(body) < DEFAULT_MAX_BODY_BYTES
    answer = httpx.post(
        url, content=body, headers={**headers, "content-type": "application/json"}, timeout=30
    )
    assert answer.status_code == 200, answer.text


def test_an_over_long_text_is_a_422_naming_the_field(
    suggest: tuple[str, dict[str, str]],
) -> None:
    url, headers = suggest
    answer = httpx.post(url, json={"text": "x" * 10_001}, headers=headers, timeout=30)
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["text"]
    assert "10000" in answer.json()["errors"][0]["reason"]

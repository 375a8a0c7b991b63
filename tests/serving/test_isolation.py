"""Tenant isolation: an org's API key reaches that org's routes and nothing else.

Real parts throughout: the shared MLflow registry with trained orgs, the app served by
uvicorn over HTTP, the key store as a file, and the real ``socialsuggest`` CLI (in
process through Typer's runner, and as a separate process where "another process
changes the store while the server runs" is the point).

The route matrix enumerates ``app.routes`` at test time, so a route added under
``/v1/orgs/{org}/…`` later is checked too and fails here if it is left open.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import BaseRoute
from typer.testing import CliRunner

from socialsuggest.cli.main import app as cli
from socialsuggest.config import load_settings
from socialsuggest.lake import Lake
from socialsuggest.registry import Registry
from socialsuggest.serving import RequestLog
from socialsuggest.serving.app import create_app
from socialsuggest.serving.auth import KEYED_GLOBAL_PATHS, KeyStore, KeyStoreError, split_key

CLI = str(Path(sys.executable).with_name("socialsuggest"))
ADMIN = "admin-" + secrets.token_urlsafe(32)
TEXT = "isolation probe: please tag my sourdough question zq7x"
AUTHOR = "author-isolation-probe-81"
KEY_SHAPE = re.compile(r"ssk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")
Serve = Callable[[FastAPI], str]


@dataclass
class Tenancy:
    """A served app with a key store: two orgs' keys, a revoked one, and the admin key."""

    url: str
    app: FastAPI
    store: KeyStore
    org: str
    other: str
    key: str  # org's
    other_key: str  # other's
    revoked: str  # was org's


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _request_log(home: Path) -> RequestLog:
    """A request log on a lake of this test's own (the shared lake stays untouched)."""
    return RequestLog(Lake.from_settings(load_settings(home=home)), flush_seconds=3600)


@pytest.fixture
def tenancy(orgs: list[str], serving_registry: Registry, serve: Serve, home: Path) -> Tenancy:
    store = KeyStore(home / "serving" / "keys.json", admin_key=ADMIN)
    org, other = orgs[0], orgs[1]
    _, key = store.create(org)
    _, other_key = store.create(other)
    gone, revoked = store.create(org)
    store.revoke(gone.key_id)
    app = create_app(serving_registry, request_log=_request_log(home), keys=store)
    return Tenancy(serve(app), app, store, org, other, key, other_key, revoked)


def _org_routes(app: FastAPI) -> list[BaseRoute]:
    return [r for r in app.routes if "{org}" in getattr(r, "path", "")]


def _methods(route: BaseRoute) -> list[str]:
    return sorted(set(getattr(route, "methods", None) or {"GET"}) - {"HEAD", "OPTIONS"})


def _call(
    url: str, route: BaseRoute, method: str, org: str, headers: dict[str, str]
) -> httpx.Response:
    """One request to ``route`` for ``org``, with a valid body for the routes we know."""
    path = getattr(route, "path", "").replace("{org}", org)
    body: Any = None
    if path.endswith("/tags:suggest"):
        body = {"text": TEXT, "author_id": AUTHOR}
    elif path.endswith(("/hashtags:suggest", "/replies:rank")):
        body = {"text": TEXT}
    elif path.endswith("/feedback"):
        body = {"request_id": "r" * 32, "accepted": ["t"], "agent_id": AUTHOR}
    elif method in {"POST", "PUT", "PATCH"}:
        body = {}
    return httpx.request(method, f"{url}{path}", json=body, headers=headers, timeout=30)


def _secret(key: str) -> str:
    return key.split("_", 2)[2]  # the secret itself may hold "_"


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_every_org_route_admits_only_its_own_org_key_or_the_admin_key(tenancy: Tenancy) -> None:
    t = tenancy
    routes = _org_routes(t.app)
    paths = {getattr(r, "path", "") for r in routes}
    assert {
        "/v1/orgs/{org}/tags:suggest", "/v1/orgs/{org}/feedback",
        "/v1/orgs/{org}/hashtags:suggest", "/v1/orgs/{org}/replies:rank",
    } <= paths, paths  # fmt: skip
    # every route under /orgs/ names its org as {org}: the guard keys on that name
    unnamed = [
        getattr(r, "path", "") for r in t.app.routes
        if "/orgs/" in getattr(r, "path", "") and r not in routes
    ]  # fmt: skip
    assert not unnamed, f"org routes without an {{org}} parameter: {unnamed}"
    refused: dict[str, tuple[dict[str, str], int, str]] = {
        "no key": ({}, 401, "missing API key"),
        "malformed key": (_bearer("hunter2-" + "x" * 40), 401, "not of the form"),
        "unknown key": (_bearer(f"ssk_{'0' * 16}_{secrets.token_urlsafe(32)}"), 401, "unknown"),
        "wrong secret": (_bearer(t.key[:-4] + "AAAA"), 401, "unknown"),
        "revoked key": (_bearer(t.revoked), 401, "revoked"),
        "basic auth": ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "Bearer"),
        "other org's key": (_bearer(t.other_key), 403, "another org"),
        "other org's key as X-API-Key": ({"X-API-Key": t.other_key}, 403, "another org"),
    }
    admitted = {
        "own key": _bearer(t.key),
        "own key as X-API-Key": {"X-API-Key": t.key},
        "admin key": _bearer(ADMIN),
    }
    checked = 0
    for route in routes:
        for method in _methods(route):
            where = f"{method} {getattr(route, 'path', '')}"
            for case, (headers, status, reason) in refused.items():
                answer = _call(t.url, route, method, t.org, headers)
                assert answer.status_code == status, (where, case, answer.text)
                assert reason in answer.json()["detail"], (where, case, answer.text)
                for key in (t.key, t.other_key, t.revoked):
                    assert key not in answer.text and _secret(key) not in answer.text
                if status == 401:
                    assert answer.headers["www-authenticate"].startswith("Bearer"), where
                checked += 1
            for case, headers in admitted.items():
                answer = _call(t.url, route, method, t.org, headers)
                assert answer.status_code not in (401, 403), (where, case, answer.text)
                if where.endswith("/tags:suggest"):
                    assert answer.status_code == 200, (where, case, answer.text)
                    assert answer.json()["org"] == t.org
                if where.endswith("/feedback"):
                    assert answer.status_code == 202, (where, case, answer.text)
                checked += 1
            # the other direction: org's key on the other org's route
            answer = _call(t.url, route, method, t.other, _bearer(t.key))
            assert answer.status_code == 403, (where, answer.text)
    assert checked >= len(routes) * (len(refused) + len(admitted))


def test_the_admin_key_reaches_any_org_and_an_org_key_no_unknown_one(tenancy: Tenancy) -> None:
    url = f"{tenancy.url}/v1/orgs/no-such-org/tags:suggest"
    admin = httpx.post(url, json={"text": TEXT}, headers=_bearer(ADMIN), timeout=30)
    assert admin.status_code == 404, admin.text  # past the guard: the org has no model
    assert "no production" in admin.json()["detail"]
    org_key = httpx.post(url, json={"text": TEXT}, headers=_bearer(tenancy.key), timeout=30)
    assert org_key.status_code == 403, org_key.text


def test_global_trends_need_a_valid_key_of_any_org(tenancy: Tenancy) -> None:
    """Lists computed from every org's posts: no anonymous reader, but no org owns them."""
    url = f"{tenancy.url}/v1/trends"
    assert httpx.get(url, timeout=30).status_code == 401
    assert httpx.get(url, headers=_bearer(tenancy.revoked), timeout=30).status_code == 401
    for key in (tenancy.key, tenancy.other_key, ADMIN):
        answer = httpx.get(url, headers=_bearer(key), timeout=30)
        assert answer.status_code not in (401, 403), answer.text  # 503: no lists in this app
    schema = httpx.get(f"{tenancy.url}/openapi.json", timeout=30).json()
    assert schema["paths"]["/v1/trends"]["get"]["security"]


def test_health_readiness_and_docs_stay_open_without_a_key(tenancy: Tenancy) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json"):
        answer = httpx.get(f"{tenancy.url}{path}", timeout=30)
        assert answer.status_code == 200, (path, answer.text)


def test_metrics_stay_open_and_carry_no_personal_data_or_keys(tenancy: Tenancy) -> None:
    # every app has /metrics: a missing route is a failure, not a reason to skip
    assert "/metrics" in {getattr(r, "path", "") for r in tenancy.app.routes}
    for headers in ({}, _bearer(tenancy.other_key), _bearer("nonsense")):
        httpx.post(
            f"{tenancy.url}/v1/orgs/{tenancy.org}/tags:suggest",
            json={"text": TEXT, "author_id": AUTHOR},
            headers=headers,
            timeout=30,
        )
    answer = httpx.get(f"{tenancy.url}/metrics", timeout=30)
    assert answer.status_code == 200, answer.text
    for secret in (TEXT, AUTHOR, tenancy.key, tenancy.other_key, "nonsense", ADMIN):
        assert secret not in answer.text


def test_the_openapi_schema_declares_the_key_on_keyed_routes_only(tenancy: Tenancy) -> None:
    schema = httpx.get(f"{tenancy.url}/openapi.json", timeout=30).json()
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            secured = operation.get("security") == [{"apiKey": []}]
            assert secured == ("{org}" in path or path in KEYED_GLOBAL_PATHS), (method, path)
            if secured:
                assert {"401", "403"} <= set(operation["responses"]), (method, path)


def test_without_a_key_store_the_embedded_app_is_open(
    orgs: list[str], serving_registry: Registry, serve: Serve
) -> None:
    """``keys=None`` is the in-process mode (integration gate, tests): no key asked."""
    url = serve(create_app(serving_registry))
    answer = httpx.post(f"{url}/v1/orgs/{orgs[0]}/tags:suggest", json={"text": TEXT}, timeout=30)
    assert answer.status_code == 200, answer.text


def test_keys_are_stored_as_hashes_only(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "serving" / "keys.json", admin_key=ADMIN)
    made = [store.create(org) for org in ("acme", "globex", "acme")]
    raw = store.path.read_text()
    for record, key in made:
        assert KEY_SHAPE.fullmatch(key), key
        parts = split_key(key)
        assert parts is not None and parts[0] == record.key_id
        secret = parts[1]
        assert secret not in raw and key not in raw
        assert hashlib.sha256(secret.encode()).hexdigest() in raw  # what is kept instead
    assert ADMIN not in raw  # the admin key lives in the environment only
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    stored = json.loads(raw)["keys"]
    assert [k["org"] for k in stored] == ["acme", "globex", "acme"]
    assert {tuple(sorted(k)) for k in stored} == {
        ("created_at", "key_id", "org", "revoked_at", "sha256")
    }
    # a second store on the same file (another process) knows the same keys
    again = KeyStore(store.path)
    assert [k.key_id for k in again.list_keys("acme")] == [
        r.key_id for r, _ in made if r.org == "acme"
    ]
    assert again.authenticate(made[1][1]).org == "globex"


def test_a_key_created_or_revoked_by_the_cli_takes_effect_in_the_running_server(
    orgs: list[str], serving_registry: Registry, serve: Serve, home: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCIALSUGGEST_")}
    env["SOCIALSUGGEST_HOME"] = str(home)
    store = KeyStore.from_settings(load_settings(home=home))
    url = serve(create_app(serving_registry, keys=store))
    suggest = f"{url}/v1/orgs/{orgs[0]}/tags:suggest"
    before = httpx.post(suggest, json={"text": TEXT}, timeout=30)
    assert before.status_code == 401  # no key exists yet

    created = subprocess.run(
        [CLI, "keys", "create", "--org", orgs[0]], env=env, capture_output=True, text=True
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert KEY_SHAPE.fullmatch(key), created.stdout
    served = httpx.post(suggest, json={"text": TEXT}, headers=_bearer(key), timeout=30)
    assert served.status_code == 200, served.text  # the next request already knows it

    key_id = key.split("_")[1]
    revoked = subprocess.run(
        [CLI, "keys", "revoke", key_id], env=env, capture_output=True, text=True
    )
    assert revoked.returncode == 0, revoked.stderr
    refused = httpx.post(suggest, json={"text": TEXT}, headers=_bearer(key), timeout=30)
    assert refused.status_code == 401, refused.text
    assert "revoked" in refused.json()["detail"]


def test_cli_create_ls_revoke_round_trip(home: Path) -> None:
    runner = CliRunner()
    env = {"SOCIALSUGGEST_HOME": str(home)}

    def run(*args: str) -> Any:
        return runner.invoke(cli, list(args), env=env)

    created = run("keys", "create", "--org", "acme")
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert KEY_SHAPE.fullmatch(key), created.stdout  # stdout holds the key and nothing else
    key_id = key.split("_")[1]
    assert key_id in created.stderr and key not in created.stderr
    assert run("keys", "create", "--org", "globex").exit_code == 0

    listed = run("keys", "ls", "--json")
    assert listed.exit_code == 0, listed.output
    assert _secret(key) not in listed.output
    rows = json.loads(listed.stdout)
    assert [(r["org"], r["revoked_at"]) for r in rows] == [("acme", None), ("globex", None)]
    assert rows[0]["key_id"] == key_id and "sha256" not in rows[0]
    only = json.loads(run("keys", "ls", "--org", "globex", "--json").stdout)
    assert [r["org"] for r in only] == ["globex"]
    table = run("keys", "ls")
    assert key_id in table.stdout and "acme" in table.stdout

    revoked = run("keys", "revoke", key_id)
    assert revoked.exit_code == 0, revoked.output
    assert "revoked" in revoked.stdout
    rows = json.loads(run("keys", "ls", "--org", "acme", "--json").stdout)
    assert rows[0]["revoked_at"] is not None
    again = run("keys", "revoke", key_id)  # idempotent: the first time is kept
    assert again.exit_code == 0
    assert json.loads(run("keys", "ls", "--org", "acme", "--json").stdout) == rows

    unknown = run("keys", "revoke", "0" * 16)
    assert unknown.exit_code == 2 and "key_id" in unknown.stderr
    bad_org = run("keys", "create", "--org", "Not An Org")
    assert bad_org.exit_code == 2 and "org" in bad_org.stderr
    assert len(json.loads(run("keys", "ls", "--json").stdout)) == 2  # nothing made


def test_the_admin_key_comes_from_the_environment_and_must_be_long(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SOCIALSUGGEST_ADMIN_KEY", ADMIN)
    settings = load_settings(home=tmp_path)
    assert settings.admin_key.get_secret_value() == ADMIN
    assert ADMIN not in json.dumps(settings.describe())
    store = KeyStore.from_settings(settings)
    access = store.authenticate(ADMIN)
    assert access.admin and access.may_reach("any-org")
    short = "tooshort-" + "x" * 20
    monkeypatch.setenv("SOCIALSUGGEST_ADMIN_KEY", short)
    with pytest.raises(KeyStoreError, match="at least 32") as raised:
        KeyStore.from_settings(load_settings(home=tmp_path))
    assert short not in str(raised.value)


def test_the_process_log_holds_no_key_and_no_request_text(
    tenancy: Tenancy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    uvicorn_loggers = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    for logger in uvicorn_loggers:  # they do not propagate to the root logger
        logger.addHandler(caplog.handler)
    try:
        url = f"{tenancy.url}/v1/orgs/{tenancy.org}/tags:suggest"
        body = {"text": TEXT, "author_id": AUTHOR}
        for headers in (
            _bearer(tenancy.key), _bearer(tenancy.other_key), _bearer(tenancy.revoked),
            _bearer(ADMIN), {"X-API-Key": tenancy.key}, _bearer("ssk_" + "f" * 16 + "_guess"),
        ):  # fmt: skip
            httpx.post(url, json=body, headers=headers, timeout=30)
        record, _ = tenancy.store.create(tenancy.org)  # the server reloads the store
        tenancy.store.revoke(record.key_id)
        httpx.post(url, json=body, headers=_bearer(tenancy.key), timeout=30)
    finally:
        for logger in uvicorn_loggers:
            logger.removeHandler(caplog.handler)
    logged = caplog.text
    assert "API key store loaded" in logged  # the capture does see the server's log
    for secret in (TEXT, AUTHOR, ADMIN, tenancy.key, tenancy.other_key, tenancy.revoked, "guess"):
        assert secret not in logged
    for key in (tenancy.key, tenancy.other_key, tenancy.revoked):
        assert _secret(key) not in logged

"""Hot swap under load, and a promoted model that does not load (issue #7, part 5).

The API runs as ``socialsuggest serve`` in its own process (as in production: its own
interpreter, its own MLflow client, API keys on), polled by eight client threads on
loopback while ``production`` of one org moves back and forth. The versions the test
registers are real variants of that org's model (some of its tags archived), so each
version gives a *different* answer: a response can be checked against the answer of
the version it names, which proves the name is the model that produced it.

The failed load is caused for real: a registered version whose artifact file is
deleted from the MLflow server's artifact store on disk (an artifact store that lost
data). Every test restores ``production`` so other serving tests see version 1.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from socialsuggest.registry import (
    PRODUCTION,
    MlflowServer,
    Registry,
    VersionInfo,
    free_port,
)
from socialsuggest.serving.cache import RELOAD_FAILED, ModelCache

POLL_SECONDS = 0.5
SWITCH_BOUND_S = 30.0  # functional bound: poll interval + a model load, with ample slack
CLIENTS = 8
RegisterVariant = Callable[[VersionInfo, set[str]], VersionInfo]  # conftest fixture
TEXTS = (
    "where is my order? it should have arrived yesterday",
    "how long do I knead bread dough",
    "the app crashes when I upload a photo",
)


# ---- a webhook receiver (the alert's optional destination) -----------------------------
class _Sink(ThreadingHTTPServer):
    received: list[dict[str, Any]]


class _Hook(BaseHTTPRequestHandler):
    server: _Sink

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def webhook() -> Iterator[_Sink]:
    sink = _Sink(("127.0.0.1", 0), _Hook)
    sink.received = []
    thread = threading.Thread(target=sink.serve_forever, daemon=True)
    thread.start()
    yield sink
    sink.shutdown()
    sink.server_close()


# ---- the API as a separate server process ----------------------------------------------
@dataclass
class Api:
    url: str
    headers: dict[str, str]
    home: Path
    process: subprocess.Popen[bytes]

    def alerts(self) -> list[dict[str, Any]]:
        path = self.home / "alerts" / "failures.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def readyz(self) -> httpx.Response:
        return httpx.get(f"{self.url}/readyz", timeout=10)


@pytest.fixture(scope="module")
def api(
    serving_mlflow: MlflowServer,
    orgs: list[str],
    webhook: _Sink,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Api]:
    """``socialsuggest serve`` on a free loopback port: its own home (request log, keys,
    alerts), the shared registry, a short poll, an admin key, the webhook above."""
    home = tmp_path_factory.mktemp("hot-swap-api")
    admin_key = secrets.token_urlsafe(32)
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": serving_mlflow.url,
        "SOCIALSUGGEST_HOME": str(home),
        "SOCIALSUGGEST_API_POLL_SECONDS": str(POLL_SECONDS),
        "SOCIALSUGGEST_ADMIN_KEY": admin_key,
        "SOCIALSUGGEST_ALERT_WEBHOOK": f"http://127.0.0.1:{webhook.server_address[1]}/hook",
    }
    command = [str(Path(sys.executable).with_name("socialsuggest")), "serve"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    log_path = home / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, env=env, cwd=home, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"serve exited: {log_path.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"not ready: {log_path.read_text()[-2000:]}"
            try:
                ready = httpx.get(f"{url}/readyz", timeout=2)
                if ready.status_code == 200 and set(ready.json()["models"]) >= set(orgs):
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield Api(url, {"Authorization": f"Bearer {admin_key}"}, home, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# ---- versions of the test's own ----------------------------------------------------------
def _answers(registry: Registry, info: VersionInfo) -> dict[str, list[tuple[str, str]]]:
    """What ``info`` answers to each test text: (tag, source) pairs, best first."""
    model = registry.load_version(info)
    frame = pd.DataFrame([{"text": t, "network": "twitter", "message_type": "mention"}
                          for t in TEXTS])  # fmt: skip
    return {
        text: [(s["tag"], s["source"]) for s in row]
        for text, row in zip(TEXTS, model.suggest_frame(frame), strict=True)
    }


def _delete_artifact(mlflow: MlflowServer, registry: Registry, info: VersionInfo) -> Path:
    """Remove the pickled model of ``info`` from the server's artifact store on disk."""
    version = registry.client.get_model_version(info.name, str(info.version))
    model_id = getattr(version, "model_id", None) or version.source.rsplit("/", 1)[-1]
    store = mlflow.log_path.parent / "mlartifacts"
    found = [p for p in store.rglob("model.pkl") if model_id in p.parts]
    assert len(found) == 1, (model_id, found)
    lost: Path = found[0]
    lost.unlink()
    return lost


# ---- load ------------------------------------------------------------------------------
@dataclass
class Traffic:
    """Eight clients posting in a loop; every outcome recorded with client-side times."""

    api: Api
    org: str
    records: list[tuple[float, float, str, int | None, list[tuple[str, str]]]] = field(
        default_factory=list
    )
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for number in range(CLIENTS):
            thread = threading.Thread(target=self._client, args=(number,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _client(self, number: int) -> None:
        url = f"{self.api.url}/v1/orgs/{self.org}/tags:suggest"
        with httpx.Client(headers=self.api.headers, timeout=30) as client:
            sent = 0
            while not self.stop.is_set():
                text = TEXTS[(number + sent) % len(TEXTS)]
                sent += 1
                started = time.monotonic()
                try:
                    response = client.post(url, json={"text": text})
                except httpx.TransportError as exc:
                    with self.lock:
                        self.failures.append(f"transport: {exc!r}")
                    continue
                ended = time.monotonic()
                if response.status_code != 200:
                    with self.lock:
                        self.failures.append(f"HTTP {response.status_code}: {response.text[:200]}")
                    continue
                body = response.json()
                answer = [(s["tag"], s["source"]) for s in body["suggestions"]]
                with self.lock:
                    self.records.append((started, ended, text, body["model_version"], answer))

    def first_served(self, version: int, after: float) -> float | None:
        with self.lock:
            ends = [end for start, end, _, v, _ in self.records if v == version and end > after]
        return min(ends) if ends else None

    def wait_for(self, version: int, after: float, bound: float = SWITCH_BOUND_S) -> float:
        """Seconds from ``after`` to the first response naming ``version``."""
        deadline = after + bound
        while time.monotonic() < deadline:
            first = self.first_served(version, after)
            if first is not None:
                return first - after
            time.sleep(0.05)
        raise AssertionError(f"no response named version {version} within {bound:.0f}s")


def _restore(registry: Registry, name: str, version: int) -> None:
    current = registry.version_by_alias(name, PRODUCTION)
    if current is None or current.version != version:
        registry.set_alias(name, PRODUCTION, version, actor="test", reason="restore after test")


# ---- tests -----------------------------------------------------------------------------
def test_promotions_and_rollbacks_under_load_fail_no_request_and_switch_quickly(
    api: Api, serving_registry: Registry, orgs: list[str], register_variant: RegisterVariant
) -> None:
    org = orgs[0]
    name = f"tags.{org}"
    base = serving_registry.version_by_alias(name, PRODUCTION)
    assert base is not None
    base_answers = _answers(serving_registry, base)
    top = base_answers[TEXTS[0]]
    assert len(top) >= 2, top
    first = register_variant(base, {top[0][0]})
    second = register_variant(base, {top[0][0], top[1][0]})
    expected = {
        base.version: base_answers,
        first.version: _answers(serving_registry, first),
        second.version: _answers(serving_registry, second),
    }
    # each version answers the first text differently: answers identify versions
    assert len({json.dumps(a[TEXTS[0]]) for a in expected.values()}) == 3, expected

    moves = [  # (target, how): two promotions, two rollbacks, ending where we started
        (first.version, "promote"),
        (second.version, "promote"),
        (first.version, "rollback"),
        (base.version, "rollback"),
    ]
    traffic = Traffic(api, org)
    switches: list[tuple[float, float, int]] = []  # (moved at, first served at, version)
    started = time.monotonic()
    traffic.start()
    try:
        time.sleep(3)  # steady state on the base version first
        for target, how in moves:
            moved_at = time.monotonic()
            if how == "promote":
                serving_registry.promote(name, target, actor="test", reason="hot swap test")
            else:
                serving_registry.rollback(name, target, actor="test", reason="hot swap test")
            latency = traffic.wait_for(target, moved_at)
            switches.append((moved_at, moved_at + latency, target))
            time.sleep(4)  # serve the new version under load for a while
    finally:
        traffic.finish()
        _restore(serving_registry, name, base.version)
    seconds = time.monotonic() - started

    records = traffic.records
    per_version = Counter(v for _, _, _, v, _ in records)
    latencies_ms = sorted((end - start) * 1000 for start, end, *_ in records)
    print(
        f"\nhot swap: {len(records) + len(traffic.failures)} requests from {CLIENTS} clients in "
        f"{seconds:.1f}s ({len(records) / seconds:.0f}/s), {len(traffic.failures)} failed; "
        f"per version {dict(per_version)}; latency p50 "
        f"{statistics.median(latencies_ms):.0f} ms, p99 "
        f"{latencies_ms[int(0.99 * (len(latencies_ms) - 1))]:.0f} ms; switch latencies "
        + ", ".join(f"v{v}: {served - moved:.2f}s" for moved, served, v in switches)
    )
    assert traffic.failures == [], traffic.failures[:5]
    assert set(per_version) <= set(expected)
    for _, _, text, version, answer in records:  # the named version produced it
        assert version is not None and answer == expected[version][text], (version, text, answer)
    # once a version answered, every request sent later (until the next move) gets it:
    # a swap is one reference assignment, nothing flips back
    windows = [*(moved for moved, _, _ in switches[1:]), float("inf")]
    for (_, served_at, target), next_move in zip(switches, windows, strict=True):
        later = [v for start, _, _, v, _ in records if served_at < start < next_move]
        assert later and set(later) == {target}, (target, Counter(later))
    moved = serving_registry.alias_history(name)[-len(moves) :]
    assert [m["to"] for m in moved] == [target for target, _ in moves]


def test_a_promoted_version_that_does_not_load_leaves_the_previous_one_serving(
    api: Api,
    serving_registry: Registry,
    serving_mlflow: MlflowServer,
    orgs: list[str],
    webhook: _Sink,
    register_variant: RegisterVariant,
) -> None:
    org = orgs[-1]
    name = f"tags.{org}"
    base = serving_registry.version_by_alias(name, PRODUCTION)
    assert base is not None
    broken = register_variant(base, set())
    removed = _delete_artifact(serving_mlflow, serving_registry, broken)
    traffic = Traffic(api, org)
    traffic.start()
    try:
        time.sleep(1)
        moved_at = time.monotonic()
        serving_registry.promote(name, broken.version, actor="test", reason="artifact lost")
        deadline = moved_at + SWITCH_BOUND_S
        while not [a for a in api.alerts() if a.get("version") == broken.version]:
            assert time.monotonic() < deadline, "no alert for the version that does not load"
            time.sleep(0.1)
        noticed = time.monotonic() - moved_at
        time.sleep(10 * POLL_SECONDS)  # ten more polls: the failed version is not retried
        ready = api.readyz()
    finally:
        traffic.finish()
        _restore(serving_registry, name, base.version)

    print(
        f"\nfailed load: noticed {noticed:.2f}s after the promotion; "
        f"{len(traffic.records)} requests served meanwhile, {len(traffic.failures)} failed; "
        f"removed {removed.name}"
    )
    assert traffic.failures == [], traffic.failures[:5]
    assert traffic.records and {v for _, _, _, v, _ in traffic.records} == {base.version}
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert ready.json()["models"][org] == base.version
    failing = ready.json()["load_failures"][org]
    assert failing["version"] == broken.version and failing["attempts"] == 1, failing
    (alert,) = [a for a in api.alerts() if a.get("version") == broken.version]
    assert alert["kind"] == RELOAD_FAILED and alert["model"] == name
    assert alert["serving_version"] == base.version and alert["error_type"]
    assert not {"text", "author_id", "agent_id"} & set(alert)  # identifiers only
    hooked = [h for h in webhook.received if h.get("version") == broken.version]
    assert len(hooked) == 1 and hooked[0]["kind"] == RELOAD_FAILED and hooked[0]["text"]
    # back on a version that loads: the failure is no longer reported
    deadline = time.monotonic() + SWITCH_BOUND_S
    while org in api.readyz().json()["load_failures"]:
        assert time.monotonic() < deadline, "the failure stayed reported after the rollback"
        time.sleep(0.2)


def test_a_version_that_does_not_load_is_retried_with_backoff_and_alerted_once(
    serving_registry: Registry,
    serving_mlflow: MlflowServer,
    orgs: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    register_variant: RegisterVariant,
) -> None:
    """The schedule itself, in-process on an alias of this test alone (production and
    the API process are untouched): 1 s, then 2 s, then 4 s between tries."""
    monkeypatch.setenv("SOCIALSUGGEST_HOME", str(tmp_path))
    alias = "backoff-test"
    name = f"tags.{orgs[1]}"
    base = serving_registry.version_by_alias(name, PRODUCTION)
    assert base is not None
    broken = register_variant(base, set())
    _delete_artifact(serving_mlflow, serving_registry, broken)
    client = serving_registry.client
    client.set_registered_model_alias(name, alias, str(base.version))
    cache = ModelCache(serving_registry, alias=alias, retry_seconds=1.0, max_retry_seconds=4.0)
    try:
        assert [e.ok for e in cache.refresh()] == [True]
        client.set_registered_model_alias(name, alias, str(broken.version))
        tries: list[float] = []
        polls = 0
        started = time.monotonic()
        while len(tries) < 4:  # poll as fast as the registry answers until the fourth try
            assert time.monotonic() - started < 60, tries
            tries += [time.monotonic() - started for e in cache.refresh() if not e.ok]
            polls += 1
            assert cache.loaded() == {orgs[1]: base.version}  # the previous one serves
            time.sleep(0.1)
        print(f"\nbackoff: {polls} polls, tries at " + ", ".join(f"{t:.1f}s" for t in tries))
        # 1 s, 2 s, 4 s apart (plus the failing load's own time), not on every poll
        gaps = [b - a for a, b in itertools.pairwise(tries)]
        assert all(g >= bound * 0.95 for g, bound in zip(gaps, (1, 2, 4), strict=True)), gaps
        assert polls - len(tries) >= 5, polls  # polls that skipped the failed version
        alerts = (tmp_path / "alerts" / "failures.jsonl").read_text().splitlines()
        assert [json.loads(a)["version"] for a in alerts] == [broken.version]
        assert cache.failures()[orgs[1]]["attempts"] == 4
        # the alias goes back to the serving version: nothing to retry, nothing reported
        client.set_registered_model_alias(name, alias, str(base.version))
        assert cache.refresh() == [] and cache.failures() == {}
    finally:
        client.delete_registered_model_alias(name, alias)

"""Experiments without affecting users: shadow and A/B challengers over real HTTP.

A challenger is a real registered variant of an org's model; the experiment is started
and stopped in the real registry and the serving app follows it by polling, as every
serving process would. The A/B split, the shadow log and the report are checked
against what the requests actually got.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from socialsuggest.config import Settings, load_settings
from socialsuggest.lake import Lake
from socialsuggest.pipeline.experiments import experiment_report
from socialsuggest.registry import (
    CHALLENGER,
    PRODUCTION,
    MlflowServer,
    Registry,
    VersionInfo,
    model_name,
)
from socialsuggest.serving.app import create_app
from socialsuggest.serving.experiments import assign
from socialsuggest.serving.logs import SHADOW, ZONE, RequestLog

pytestmark = [pytest.mark.slow]
TEXT = "my bread dough will not rise, what should I change?"


@pytest.fixture
def org(orgs: list[str]) -> str:
    return orgs[-1]


@pytest.fixture
def challenger(
    org: str,
    serving_registry: Registry,
    register_variant: Callable[[VersionInfo, set[str]], VersionInfo],
) -> Iterator[VersionInfo]:
    name = model_name("tags", org)
    base = serving_registry.version_by_alias(name, PRODUCTION)
    assert base is not None
    top = serving_registry.load_version(base).suggest_frame(
        _frame(TEXT), k=1
    )[0][0]["tag"]  # fmt: skip
    yield register_variant(base, {top})  # its answer to TEXT differs from production's
    serving_registry.stop_experiment(name, actor="test", reason="cleanup")


def _frame(text: str) -> Any:
    import pandas as pd

    return pd.DataFrame([{"text": text, "network": "twitter", "message_type": "mention"}])


@pytest.fixture
def app_and_log(
    serving_registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> tuple[FastAPI, RequestLog, Settings]:
    settings = load_settings(home=tmp_path_factory.mktemp("experiments"))
    log = RequestLog(Lake.from_settings(settings), flush_seconds=3600)
    return create_app(serving_registry, poll_seconds=0.3, request_log=log), log, settings


def _wait_for(url: str, org: str, running: bool, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = httpx.get(f"{url}/v1/orgs/{org}/experiment").json()
        if (body["experiment"] is not None) == running:
            return body
        time.sleep(0.2)
    raise AssertionError(f"the app did not {'start' if running else 'stop'} the experiment")


def test_ab_split_is_stable_per_user_and_the_report_compares_acceptance(
    org: str,
    challenger: VersionInfo,
    serving_registry: Registry,
    app_and_log: tuple[FastAPI, RequestLog, Settings],
    serve: Callable[[FastAPI], str],
) -> None:
    app, log, settings = app_and_log
    name = model_name("tags", org)
    production = serving_registry.version_by_alias(name, PRODUCTION)
    assert production is not None
    experiment = serving_registry.start_experiment(
        name, challenger.version, mode="ab", fraction=0.5, actor="test", reason="ab test"
    )
    url = serve(app)
    _wait_for(url, org, running=True)

    agents = [f"agent-{i}" for i in range(120)]
    served: dict[str, dict[str, Any]] = {}
    for agent in agents:
        body = httpx.post(
            f"{url}/v1/orgs/{org}/tags:suggest", json={"text": TEXT, "agent_id": agent}
        ).json()
        served[agent] = body
        expected = assign(experiment, org, agent)
        assert body["variant"] == expected
        want = challenger.version if expected == "challenger" else production.version
        assert body["model_version"] == want
    variants = {b["variant"] for b in served.values()}
    assert variants == {"champion", "challenger"}
    again = httpx.post(
        f"{url}/v1/orgs/{org}/tags:suggest", json={"text": TEXT, "agent_id": agents[0]}
    ).json()
    assert again["variant"] == served[agents[0]]["variant"]  # a user stays on one side
    anonymous = httpx.post(f"{url}/v1/orgs/{org}/tags:suggest", json={"text": TEXT}).json()
    assert anonymous["variant"] == "champion" and anonymous["model_version"] == production.version

    # challenger users accept their first suggestion, champion users accept nothing
    for body in served.values():
        accepted = [body["suggestions"][0]["tag"]] if body["variant"] == "challenger" else []
        response = httpx.post(
            f"{url}/v1/orgs/{org}/feedback",
            json={"request_id": body["request_id"], "accepted": accepted},
        )
        assert response.status_code == 202
    log.flush()
    report = experiment_report(settings, serving_registry, name)
    every = [*served.values(), again, anonymous]  # each served response was shown
    challengers = [b for b in every if b["variant"] == "challenger"]
    champions = [b for b in every if b["variant"] == "champion"]
    # feedback accepted one tag of each challenger response of the first round
    assert report["challenger"]["accepted"] == sum(
        b["variant"] == "challenger" for b in served.values()
    )
    assert report["challenger"]["shown"] == sum(len(b["suggestions"]) for b in challengers)
    assert report["champion"]["accepted"] == 0
    assert report["champion"]["shown"] == sum(len(b["suggestions"]) for b in champions)
    assert report["comparison"]["verdict"] == "better"
    assert report["comparison"]["low"] > 0


def test_shadow_challenger_is_logged_never_shown_and_stop_ends_it(
    org: str,
    challenger: VersionInfo,
    serving_registry: Registry,
    app_and_log: tuple[FastAPI, RequestLog, Settings],
    serve: Callable[[FastAPI], str],
    monkeypatch: pytest.MonkeyPatch,
    serving_mlflow: MlflowServer,
) -> None:
    app, log, settings = app_and_log
    name = model_name("tags", org)
    production = serving_registry.version_by_alias(name, PRODUCTION)
    assert production is not None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", serving_mlflow.url)
    from socialsuggest.cli.main import app as cli

    started = CliRunner().invoke(
        cli, ["experiments", "start", "--org", org, "--version", str(challenger.version),
              "--mode", "shadow", "--reason", "shadow test"],
    )  # fmt: skip
    assert started.exit_code == 0, started.output
    url = serve(app)
    status = _wait_for(url, org, running=True)
    assert status["experiment"]["mode"] == "shadow"
    bodies = [
        httpx.post(
            f"{url}/v1/orgs/{org}/tags:suggest", json={"text": TEXT, "agent_id": f"a{i}"}
        ).json()
        for i in range(20)
    ]
    assert {(b["variant"], b["model_version"]) for b in bodies} == {
        ("champion", production.version)
    }
    time.sleep(0.5)  # background shadow predictions finish after their responses
    log.flush()
    lake = Lake.from_settings(settings)
    shadow_rows = lake.read([f.key for f in lake.files(ZONE, SHADOW)]).to_pylist()
    assert {r["request_id"] for r in shadow_rows} == {b["request_id"] for b in bodies}
    assert {r["challenger_version"] for r in shadow_rows} == {challenger.version}
    # the challenger answers TEXT differently (its top tag is archived): it really ran
    assert all(
        [s["tag"] for s in r["suggestions"]] != [s["tag"] for s in bodies[0]["suggestions"]]
        for r in shadow_rows
    )
    report = experiment_report(settings, serving_registry, name)
    assert report["shadow"]["requests_compared"] == len(bodies)
    assert 0 <= report["shadow"]["mean_jaccard"] < 1
    assert report["challenger"]["shown"] == 0  # never shown

    stopped = CliRunner().invoke(cli, ["experiments", "stop", "--org", org, "--reason", "done"])
    assert stopped.exit_code == 0, stopped.output
    _wait_for(url, org, running=False)
    assert serving_registry.version_by_alias(name, CHALLENGER) is None
    history = serving_registry.alias_history(name)
    assert history[-1]["alias"] == CHALLENGER and history[-1]["to"] is None
    missing = CliRunner().invoke(cli, ["experiments", "report", "--org", org])
    assert missing.exit_code == 1 and "no running experiment" in missing.output


def test_production_cannot_challenge_itself_and_bad_modes_are_named(
    org: str,
    challenger: VersionInfo,
    serving_registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    serving_mlflow: MlflowServer,
) -> None:
    from socialsuggest.cli.main import app as cli
    from socialsuggest.registry import RegistryError

    name = model_name("tags", org)
    production = serving_registry.version_by_alias(name, PRODUCTION)
    assert production is not None
    with pytest.raises(RegistryError, match="is production"):
        serving_registry.start_experiment(
            name, production.version, mode="ab", fraction=0.1, actor="t", reason="r"
        )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", serving_mlflow.url)
    canary = CliRunner().invoke(
        cli, ["experiments", "start", "--org", org, "--version", str(challenger.version),
              "--mode", "canary"],
    )  # fmt: skip
    assert canary.exit_code == 2 and "mode" in canary.output
    assert serving_registry.experiment(name) is None  # nothing half-started

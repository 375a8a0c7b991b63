"""``make run`` end to end: the real CLI brings up MLflow, the API and Airflow's four
components, the scheduler runs the first daily retrain, the models it promoted answer
on the API, an operator's deletion request runs from the REST API (what the trigger
form calls), and ``stack down`` leaves no process behind.

Small sample (2 orgs) and private ports/home, so it runs beside a developer's stack.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from socialsuggest.registry.server import free_port

# `stack up` takes 4-8 minutes alone, ~15 beside the rest of the suite (`make test` runs
# tests/e2e in its own process, infra/test-suite.sh): the suite's 600 s timeout would
# interrupt it mid-start (every test an error, the half-started stack left running); the
# subprocess's own 2,100 s limit below is the one meant to bind
pytestmark = [pytest.mark.slow, pytest.mark.services, pytest.mark.timeout(2400)]
CLI = str(Path(sys.executable).with_name("socialsuggest"))


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[dict[str, str], subprocess.CompletedProcess[str]]]:
    home = Path(tempfile.mkdtemp(prefix="socialsuggest-stack-"))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SOCIALSUGGEST_", "MLFLOW_", "AIRFLOW"))
    }
    env.update(
        {
            "SOCIALSUGGEST_HOME": str(home),
            "SOCIALSUGGEST_MLFLOW_PORT": str(free_port()),
            "SOCIALSUGGEST_API_PORT": str(free_port()),
            "SOCIALSUGGEST_AIRFLOW_PORT": str(free_port()),
            # a CI runner's budget: the stack shares 2 cores with two other pytest
            # processes and their servers, where a 250 ms gate once timed a starved
            # moment (trends: p95 319 ms); the gate's own tests hold the default
            "SOCIALSUGGEST_GATE_LATENCY_BUDGET_MS": "2000",
            # the API asks MLflow for four families' aliases on every poll, for the ~12
            # minutes the stack runs beside the rest of the suite; the tests below wait
            # up to 30-60 s for a move to be served, so 5 s polls still show it
            "SOCIALSUGGEST_API_POLL_SECONDS": "5",
        }
    )
    try:  # whatever interrupts the start, what it started is stopped
        up = subprocess.run(
            [CLI, "stack", "up", "--orgs", "2", "--messages", "1500", "--days", "20",
             "--detach", "--timeout", "900"],
            env=env, capture_output=True, text=True, timeout=2100,
        )  # fmt: skip
        print(up.stderr[-6000:])
        yield env, up
    finally:
        subprocess.run([CLI, "stack", "down"], env=env, timeout=180, check=False)


def _described(env: dict[str, str]) -> dict[str, object]:
    path = Path(env["SOCIALSUGGEST_HOME"]) / "services" / "stack" / "stack.json"
    described: dict[str, object] = json.loads(path.read_text())
    return described


def test_make_run_brings_up_the_platform_and_the_first_retrain_succeeds(
    stack: tuple[dict[str, str], subprocess.CompletedProcess[str]],
) -> None:
    env, up = stack
    assert up.returncode == 0, up.stderr[-4000:]
    plain = up.stderr.replace("[bold]", "").replace("[/]", "")
    assert "tags_daily_retrain: success" in plain
    assert "hashtags_daily_retrain: success" in plain
    assert "replies_daily_retrain: success" in plain
    assert "trends_hourly: success" in plain
    # the first runs are the ones unpausing made: none repeated by hand because it had
    # already ended when `stack up` came to follow it (the tag DAG's second run is the
    # next day's, which `stack up` triggers on purpose)
    url, headers = _airflow(env)
    for dag_id in ("hashtags_daily_retrain", "trends_hourly"):
        runs = httpx.get(f"{url}/api/v2/dags/{dag_id}/dagRuns", headers=headers).json()
        kinds = [run["run_type"] for run in runs["dag_runs"]]
        assert kinds and "manual" not in kinds, (dag_id, kinds)
    assert f"http://127.0.0.1:{env['SOCIALSUGGEST_AIRFLOW_PORT']}" in up.stderr
    assert "password" in up.stderr
    status = json.loads(
        subprocess.run(
            [CLI, "stack", "status", "--json"], env=env, capture_output=True, text=True, check=True
        ).stdout
    )
    names = {row["name"]: row for row in status}
    assert set(names) == {
        "mlflow", "api", "airflow-api-server", "airflow-scheduler", "airflow-dag-processor",
        "airflow-triggerer",
    }  # fmt: skip
    assert all(row["alive"] and row["memory_mib"] > 10 for row in status)
    print("memory (MiB, PSS):", {n: round(r["memory_mib"]) for n, r in names.items()},
          "total", round(sum(r["memory_mib"] for r in status)))  # fmt: skip


def test_the_promoted_models_answer_on_the_api(
    stack: tuple[dict[str, str], subprocess.CompletedProcess[str]],
) -> None:
    env, up = stack
    from mlflow import MlflowClient

    client = MlflowClient(f"http://127.0.0.1:{env['SOCIALSUGGEST_MLFLOW_PORT']}")
    production = {m.name: m.aliases.get("production") for m in client.search_registered_models()}
    assert production and all(production.values()), production
    org = sorted(n for n in production if n.startswith("tags."))[0].split(".", 1)[1]
    assert f"hashtags.{org}" in production, production  # every family ran in make run
    assert any(n.startswith("replies.") for n in production), production
    # an operator's key for the org, made by the CLI while the API runs (no restart)
    created = subprocess.run(
        [CLI, "keys", "create", "--org", org], env=env, capture_output=True, text=True
    )
    assert created.returncode == 0, created.stderr
    headers = {"authorization": f"Bearer {created.stdout.strip()}"}
    api = f"http://127.0.0.1:{env['SOCIALSUGGEST_API_PORT']}"
    url, body = f"{api}/v1/orgs/{org}/tags:suggest", {"text": "what should I try next?"}
    deadline = time.monotonic() + 60  # the API's cache polls the registry
    while time.monotonic() < deadline:
        answer = httpx.post(url, json=body, headers=headers)
        if answer.status_code == 200 and answer.json().get("model_version"):
            break
        time.sleep(2)
    assert answer.status_code == 200, answer.text
    assert str(answer.json()["model_version"]) == str(production[f"tags.{org}"])
    wanted = str(production[f"hashtags.{org}"])
    deadline = time.monotonic() + 30  # the hashtags cache polls the registry too
    while time.monotonic() < deadline:
        hashtags = httpx.post(
            f"{api}/v1/orgs/{org}/hashtags:suggest", json={"text": "tonight's winners"},
            headers=headers,
        )  # fmt: skip
        if hashtags.status_code == 200 and str(hashtags.json()["model_version"]) == wanted:
            break
        time.sleep(1)
    assert hashtags.status_code == 200, hashtags.text
    assert str(hashtags.json()["model_version"]) == wanted
    assert hashtags.json()["suggestions"]
    if f"replies.{org}" in production:  # an org with inbox replies: ranked saved replies
        ranked = httpx.post(f"{api}/v1/orgs/{org}/replies:rank", json=body, headers=headers)
        assert ranked.status_code == 200, ranked.text
        assert ranked.json()["replies"] and ranked.json()["model"] == f"replies.{org}"
    trends = httpx.get(f"{api}/v1/trends", headers=headers)  # global lists: any org's key
    assert trends.status_code == 200, trends.text
    assert trends.json()["model"] == "trends.global" and "all" in trends.json()["segments"]
    anonymous = httpx.post(url, json=body)  # same request, no key
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    # the key the make run banner shows for the sample org works as printed
    shown = re.search(r"authorization: Bearer (ssk_\S+)'", up.stderr)
    assert shown, up.stderr[-2000:]
    banner_key = {"authorization": f"Bearer {shown[1]}"}
    sample = httpx.post(f"{api}/v1/orgs/acme/tags:suggest", json=body, headers=banner_key)
    assert sample.status_code in (200, 404), sample.text  # 404: acme has no model here


def _airflow(env: dict[str, str]) -> tuple[str, dict[str, str]]:
    url = f"http://127.0.0.1:{env['SOCIALSUGGEST_AIRFLOW_PORT']}"
    generated = Path(env["SOCIALSUGGEST_HOME"]) / "airflow"
    secret = json.loads((generated / "simple_auth_manager_passwords.json.generated").read_text())
    token = httpx.post(
        f"{url}/auth/token", json={"username": "admin", "password": secret["admin"]}, timeout=30
    ).json()["access_token"]
    return url, {"Authorization": f"Bearer {token}"}


def _run_to_end(url: str, headers: dict[str, str], dag_id: str, conf: dict[str, str]) -> str:
    run = httpx.post(
        f"{url}/api/v2/dags/{dag_id}/dagRuns",
        headers=headers, json={"logical_date": None, "conf": conf}, timeout=30,
    ).json()  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state: str = httpx.get(
            f"{url}/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}", headers=headers
        ).json()["state"]
        if state in {"success", "failed"}:
            return state
        time.sleep(2)
    raise AssertionError(f"{dag_id} did not finish in 300 s")


def test_the_next_day_gives_a_second_version_and_a_rollback_from_the_form_is_served(
    stack: tuple[dict[str, str], subprocess.CompletedProcess[str]],
) -> None:
    """The user's flow: after `make run` a rollback has a target (the next day's run
    made version 2), the rollback DAG moves production back and the API follows."""
    env, _ = stack
    from mlflow import MlflowClient

    client = MlflowClient(f"http://127.0.0.1:{env['SOCIALSUGGEST_MLFLOW_PORT']}")
    names = sorted(m.name for m in client.search_registered_models() if m.name.startswith("tags."))
    production_of = {n: int(client.get_model_version_by_alias(n, "production").version)
                     for n in names}  # fmt: skip
    # An org's next-day candidate may fairly lose its gate (a sample org's test window is
    # ~70 messages: 3 misses are a 0.04 drop), so the rollback runs on an org that did
    # get a second production version; at least one must.
    promoted = [n for n in names if production_of[n] >= 2]
    assert promoted, f"no org got a second production version: {production_of}"
    name = promoted[0]
    org = name.split(".", 1)[1]
    production = production_of[name]
    url, headers = _airflow(env)
    conf = {"family": "tags", "org": org, "reason": "e2e rollback", "requester": "ops"}
    assert _run_to_end(url, headers, "model_rollback", conf) == "success"
    back = int(client.get_model_version_by_alias(name, "production").version)
    assert back < production
    key = subprocess.run(
        [CLI, "keys", "create", "--org", org], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    api = f"http://127.0.0.1:{env['SOCIALSUGGEST_API_PORT']}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = httpx.post(
            f"{api}/v1/orgs/{org}/tags:suggest", json={"text": "what now?"},
            headers={"Authorization": f"Bearer {key}"},
        ).json()  # fmt: skip
        if answer.get("model_version") == back:
            break
        time.sleep(1)
    assert answer["model_version"] == back


def test_a_deletion_request_triggered_through_the_rest_api_runs_on_the_scheduler(
    stack: tuple[dict[str, str], subprocess.CompletedProcess[str]],
) -> None:
    env, _ = stack
    url, headers = _airflow(env)
    home = Path(env["SOCIALSUGGEST_HOME"])
    import pyarrow.dataset as ds

    authors = ds.dataset(home / "lake" / "raw" / "messages", partitioning="hive").to_table(
        columns=["author_id"]
    )["author_id"]
    subject = sorted(set(authors.to_pylist()))[0]  # someone with messages in the lake
    conf = {"subject_id": subject, "reason": "e2e", "requester": "dpo@example"}
    assert _run_to_end(url, headers, "gdpr_forget", conf) == "success"
    journals = [
        json.loads(p.read_text())
        for p in (home / "lake" / "audit" / "privacy" / "requests").glob("era-*.json")
    ]
    assert len(journals) == 1
    assert journals[0]["status"] == "done" and journals[0]["verification"]["passed"]
    assert sum(step["rows_removed"] for step in journals[0]["objects"]) > 0
    remaining = ds.dataset(home / "lake" / "raw" / "messages", partitioning="hive").to_table(
        columns=["author_id"]
    )["author_id"]
    assert subject not in set(remaining.to_pylist())


def test_stack_down_leaves_no_process_behind(
    stack: tuple[dict[str, str], subprocess.CompletedProcess[str]],
) -> None:
    env, _ = stack
    described = _described(env)
    pids = dict(described["pids"])  # type: ignore[call-overload]
    tree = []
    for pid in pids.values():
        root = psutil.Process(pid)
        tree += [root, *root.children(recursive=True)]
    assert len(tree) >= len(pids) + 3  # workers, log servers, MLflow's uvicorn
    down = subprocess.run([CLI, "stack", "down"], env=env, capture_output=True, text=True,
                          timeout=180)  # fmt: skip
    assert down.returncode == 0, down.stderr
    survivors = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not survivors, [(p.pid, p.cmdline()) for p in survivors]
    marker = described["id"]
    for process in psutil.process_iter():
        try:
            assert process.environ().get("SOCIALSUGGEST_STACK") != marker, process.cmdline()
        except psutil.Error:
            continue
    for port in ("SOCIALSUGGEST_AIRFLOW_PORT", "SOCIALSUGGEST_API_PORT",
                 "SOCIALSUGGEST_MLFLOW_PORT"):  # fmt: skip
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{env[port]}/", timeout=2)

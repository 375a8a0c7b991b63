"""Triggering DAGs through Airflow's REST API (what the UI's trigger form calls)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from servers import pick_port

pytestmark = [pytest.mark.slow, pytest.mark.services]
#: Preferred port (another when taken): clear of a developer's Airflow on 8080.
PORT = 28080


@pytest.fixture(scope="module")
def api(airflow_db: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A real ``airflow api-server`` on the test database, with a bearer token."""
    airflow = str(Path(sys.executable).parent / "airflow")
    env = {**os.environ, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "ops:admin"}
    reserialize = subprocess.run([airflow, "dags", "reserialize"], env=env,
                                 capture_output=True, text=True, timeout=300)  # fmt: skip
    assert reserialize.returncode == 0, reserialize.stderr[-2000:]
    port = pick_port(PORT)
    log = open(airflow_db / "api-server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [airflow, "api-server", "--port", str(port), "--host", "127.0.0.1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (airflow_db / "api-server.log").read_text()[-3000:]
            time.sleep(1)
        else:
            pytest.fail("api-server did not become healthy in 180 s")
        passwords = json.loads(
            (airflow_db / "simple_auth_manager_passwords.json.generated").read_text()
        )
        token = httpx.post(
            f"{url}/auth/token", json={"username": "ops", "password": passwords["ops"]}, timeout=30
        ).json()["access_token"]
        yield url, {"Authorization": f"Bearer {token}"}
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and its workers
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def test_a_conf_that_violates_a_param_is_refused_with_400(api: tuple[str, dict[str, str]]) -> None:
    url, headers = api
    bad = httpx.post(
        f"{url}/api/v2/dags/gdpr_forget/dagRuns",
        headers=headers,
        json={"logical_date": None, "conf": {"subject_id": "", "reason": "x", "requester": ""}},
        timeout=30,
    )
    assert bad.status_code == 400, bad.text
    bad_org = httpx.post(
        f"{url}/api/v2/dags/model_rollback/dagRuns",
        headers=headers,
        json={
            "logical_date": None,
            "conf": {"family": "tags", "org": "Not An Org", "reason": "test", "requester": "ops"},
        },
        timeout=30,
    )
    assert bad_org.status_code == 400, bad_org.text


def test_a_valid_conf_is_accepted_and_queued(api: tuple[str, dict[str, str]]) -> None:
    url, headers = api
    ok = httpx.post(
        f"{url}/api/v2/dags/model_rollback/dagRuns",
        headers=headers,
        json={
            "logical_date": None,
            "conf": {"family": "tags", "org": "acme", "reason": "test", "requester": "ops"},
        },
        timeout=30,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["state"] == "queued" and ok.json()["conf"]["org"] == "acme"
    unauthenticated = httpx.post(
        f"{url}/api/v2/dags/model_rollback/dagRuns", json={"conf": {}}, timeout=30
    )
    assert unauthenticated.status_code == 401

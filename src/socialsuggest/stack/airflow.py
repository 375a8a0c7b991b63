"""Airflow for the local stack: its environment, one-off CLI steps and a REST client.

The stack runs Airflow's components separately (api-server, scheduler, dag-processor,
triggerer) rather than ``airflow standalone``, so each can be stopped by PID and sized
for 2 cores: LocalExecutor, ``parallelism`` from settings (2), one API worker, one
parsing process. Components of one Airflow must share a JWT secret (the API server
signs the tokens task runners present to the execution API); it is generated once per
home and kept 0600 beside the database.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from socialsuggest.config import Settings

USER = "admin"
LAKE_WRITERS_POOL = "lake_writers"  # the DAGs' tasks that rewrite lake files share 1 slot
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
FINISHED = {"success", "failed"}


def airflow_home(settings: Settings) -> Path:
    return settings.home / "airflow"


def airflow_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.airflow_port}"


def airflow_env(
    settings: Settings, *, dags_folder: Path, tracking_uri: str, base: Mapping[str, str]
) -> dict[str, str]:
    """The environment every Airflow process (and so every task) of the stack gets.

    Where the stack's layout depends on a value (home, DAG folder, ports, secret) it is
    set here; tuning knobs an operator may have set (executor, database) are kept.
    """
    home = airflow_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    url = airflow_url(settings)
    env = dict(base)
    env.setdefault("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    env.setdefault("AIRFLOW__API__WORKERS", "1")
    env.setdefault("AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES", "1")
    # The stack reserializes every DAG when it starts, and the DAG processor parses a file
    # again soon after it changes (modified-time order); the periodic reparse of unchanged
    # files (Airflow's default: every 30 s, ~0.35 s of CPU per DAG file here) is only
    # background load on a 2-core machine, so it runs every 2 minutes.
    env.setdefault("AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL", "120")
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": str(settings.airflow_parallelism),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(settings.airflow_port),
            "AIRFLOW__API__BASE_URL": url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": _jwt_secret(home),
            # what the tasks read: the same lake, catalog and MLflow as the CLI and the API
            "SOCIALSUGGEST_HOME": str(settings.home),
            "MLFLOW_TRACKING_URI": tracking_uri,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _jwt_secret(home: Path) -> str:
    path = home / "jwt_secret"
    if not path.is_file():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


def airflow_exe() -> str:
    local = Path(sys.executable).with_name("airflow")
    return str(local) if local.exists() else "airflow"


def component_argv(name: str) -> list[str]:
    """How the stack starts one of Airflow's components: ``airflow NAME``, except the
    scheduler, started through ``socialsuggest.stack.scheduler`` so that the task
    processes it forks find our modules imported (the module says why)."""
    if name == "scheduler":
        return [sys.executable, "-m", "socialsuggest.stack.scheduler"]
    return [airflow_exe(), name]


def airflow_cli(args: list[str], env: Mapping[str, str], *, timeout: float = 600) -> str:
    """Run one ``airflow`` CLI command; raise with its output when it fails."""
    done = subprocess.run(
        [airflow_exe(), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"airflow {' '.join(args)} exited with {done.returncode}:\n"
            f"{(done.stdout + done.stderr)[-3000:]}"
        )
    return done.stdout


def password(settings: Settings) -> str:
    """The admin password the API server generated (SimpleAuthManager)."""
    generated = airflow_home(settings) / "simple_auth_manager_passwords.json.generated"
    passwords: dict[str, str] = json.loads(generated.read_text())
    return passwords[USER]


@dataclass
class TaskState:
    task_id: str
    map_index: int
    state: str | None
    duration: float | None

    @property
    def label(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"


@dataclass
class RunResult:
    dag_id: str
    run_id: str
    state: str
    seconds: float
    tasks: list[TaskState] = field(default_factory=list)


class AirflowAPI:
    """The few REST calls the stack needs (what the UI's buttons call)."""

    def __init__(self, url: str, username: str, secret: str) -> None:
        self.url = url
        token = httpx.post(
            f"{url}/auth/token", json={"username": username, "password": secret}, timeout=30
        )
        token.raise_for_status()
        self._client = httpx.Client(
            base_url=f"{url}/api/v2",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=30,
        )

    def close(self) -> None:
        self._client.close()

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._client.request(method, path, **kwargs)
        if response.is_error:
            raise RuntimeError(
                f"Airflow API {method} {path}: {response.status_code} {response.text[:500]}"
            )
        return response.json()

    def dag_ids(self) -> list[str]:
        dags = self._json("GET", "/dags", params={"limit": 100})["dags"]
        return sorted(d["dag_id"] for d in dags)

    def dag(self, dag_id: str) -> dict[str, Any]:
        dag: dict[str, Any] = self._json("GET", f"/dags/{dag_id}")
        return dag

    def unpause(self, dag_id: str) -> None:
        self._json("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def runs(self, dag_id: str, limit: int = 5) -> list[dict[str, Any]]:
        params = {"limit": limit, "order_by": "-run_after"}
        runs: list[dict[str, Any]] = self._json("GET", f"/dags/{dag_id}/dagRuns", params=params)[
            "dag_runs"
        ]
        return runs

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> dict[str, Any]:
        run: dict[str, Any] = self._json(
            "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}}
        )
        return run

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self._json("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
        return run

    def task_states(self, dag_id: str, run_id: str) -> list[TaskState]:
        body = self._json("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return [
            TaskState(t["task_id"], int(t.get("map_index", -1)), t.get("state"), t.get("duration"))
            for t in body["task_instances"]
        ]

    def follow(
        self,
        dag_id: str,
        run_id: str,
        *,
        timeout: float,
        say: Callable[[str], None],
        poll: float = 3.0,
    ) -> RunResult:
        """Wait for a run to finish, saying each task's state change as it happens."""
        start = time.monotonic()
        seen: dict[str, str | None] = {}
        while True:
            run = self.run(dag_id, run_id)
            tasks = self.task_states(dag_id, run_id)
            for task in sorted(tasks, key=lambda t: (t.task_id, t.map_index)):
                if seen.get(task.label, "-") != task.state:
                    seen[task.label] = task.state
                    took = f" ({task.duration:.0f} s)" if task.duration else ""
                    say(f"{dag_id}: {task.label} {task.state or 'created'}{took}")
            elapsed = time.monotonic() - start
            if run["state"] in FINISHED:  # the run's own time: it may have ended before we came
                ran = _run_seconds(run)
                return RunResult(dag_id, run_id, run["state"], ran or elapsed, tasks)
            if elapsed > timeout:
                raise TimeoutError(f"{dag_id} run {run_id} not finished after {timeout:.0f}s")
            time.sleep(poll)


def _run_seconds(run: dict[str, Any]) -> float | None:
    """Start to end of a finished run, from the run itself (``None`` if not both known)."""
    if not (run.get("start_date") and run.get("end_date")):
        return None
    started = datetime.fromisoformat(run["start_date"])
    return (datetime.fromisoformat(run["end_date"]) - started).total_seconds()


def health(url: str) -> dict[str, Any]:
    """Airflow's own health document (metadatabase, scheduler, dag processor, triggerer)."""
    response = httpx.get(f"{url}/api/v2/monitor/health", timeout=5)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def healthy(url: str, components: tuple[str, ...]) -> bool:
    body = health(url)
    return all(
        (body.get(c) or {}).get("status") == "healthy" for c in ("metadatabase", *components)
    )

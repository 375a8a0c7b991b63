"""The local stack ``make run`` brings up: MLflow, the suggestion API and Airflow.

``up`` starts each component in its own process group with a PID file and a log under
``$SOCIALSUGGEST_HOME/services/stack/``, prepares Airflow (migrate, the
``lake_writers`` pool, reserialize), unpauses the DAGs and follows the first
``tags_daily_retrain`` task by task. ``down`` stops every group it started and then
sweeps any process still carrying the stack's marker, so nothing outlives it.
``once`` is ``make run ONCE=1``: the same DAG through ``airflow dags test``, beside
MLflow only, exiting with the run's status.

Why not ``airflow standalone``: it leaves children behind on SIGTERM, runs four API
workers and 32 task slots; on 2 cores each component is sized here instead.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from socialsuggest.config import REPO_ROOT, Settings
from socialsuggest.registry.server import healthy as mlflow_healthy
from socialsuggest.registry.server import server_command
from socialsuggest.stack import airflow as af
from socialsuggest.stack.processes import (
    MARKER,
    Launched,
    StackError,
    descendants,
    group_members,
    launch,
    memory_mib,
    pid_alive,
    port_free,
    stop_group,
    sweep,
    wait_until,
)

FIRST_DAG = "tags_daily_retrain"
Say = Callable[[str], None]


def _unfinished(run: dict[str, Any]) -> bool:
    """A clock-scheduled run still to follow (unpausing made it due)."""
    return run.get("run_type") == "scheduled" and run["state"] not in af.FINISHED


def _since(run_type: str, since: datetime | None, *stamps: str) -> Callable[[dict[str, Any]], bool]:
    """A run of ``run_type`` whose first present ``stamps`` field is at or after ``since``
    (finished or not; any such run when ``since`` is None).

    Asset-triggered runs are dated by ``run_after``; a clock-scheduled one by when it was
    queued: the run unpausing made due, which may have ended while an earlier DAG's run
    was followed.
    """

    def wanted(run: dict[str, Any]) -> bool:
        if run.get("run_type") != run_type:
            return False
        stamp = next((run[field] for field in stamps if run.get(field)), None)
        return since is None or (stamp is not None and datetime.fromisoformat(stamp) >= since)

    return wanted


@dataclass
class ComponentStatus:
    name: str
    pid: int
    alive: bool
    processes: int
    memory_mib: float


class LocalStack:
    """One stack per ``SOCIALSUGGEST_HOME``; its description lives in ``stack.json``."""

    def __init__(
        self, settings: Settings, *, dags_folder: Path | None = None, say: Say = print
    ) -> None:
        self.settings = settings
        self.dags_folder = dags_folder or REPO_ROOT / "dags"
        self.state = settings.home / "services" / "stack"
        self.say = say
        self.launched: dict[str, Launched] = {}
        self.stack_id = ""
        self.tracking_uri = settings.resolved_tracking_uri

    # ------------------------------------------------------------------ up

    def up(self, *, components: tuple[str, ...] = af.COMPONENTS) -> None:
        """Start MLflow (unless an external one is configured), the API and Airflow."""
        self._refuse_if_running()
        self.state.mkdir(parents=True, exist_ok=True)
        self.stack_id = uuid.uuid4().hex[:12]
        self._describe(started_at=datetime.now(UTC).isoformat())
        self._start_mlflow()
        self._start_api()
        self._start_airflow(components)

    def _refuse_if_running(self) -> None:
        described = self._read_description()
        if described and any(pid_alive(pid) for pid in described.get("pids", {}).values()):
            raise StackError(
                f"a stack from {self.settings.home} is already running "
                f"(pids {sorted(described['pids'].values())}); stop it with `make stop`"
            )
        if described:  # a stack that died without `down`: clear what it left
            self.stack_id = described.get("id", "")
            self.down()

    def _env(self) -> dict[str, str]:
        import os

        base = {**os.environ, MARKER: self.stack_id}
        return af.airflow_env(
            self.settings,
            dags_folder=self.dags_folder,
            tracking_uri=self.tracking_uri,
            base=base,
        )

    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> Launched:
        launched = launch(name, argv, env, self.state)
        self.launched[name] = launched
        self._describe()
        return launched

    def _need_port(self, port: int, setting: str) -> None:
        if not port_free("127.0.0.1", port):
            raise StackError(
                f"port {port} is in use; stop what holds it or set {setting} to a free port"
            )

    def _start_mlflow(self) -> None:
        settings = self.settings
        if settings.mlflow_tracking_uri:
            self.say(f"mlflow: using {settings.mlflow_tracking_uri} (MLFLOW_TRACKING_URI)")
            return
        self._need_port(settings.mlflow_port, "SOCIALSUGGEST_MLFLOW_PORT")
        home = settings.home / "mlflow"
        home.mkdir(parents=True, exist_ok=True)
        argv, env = server_command(
            home,
            port=settings.mlflow_port,
            backend_store_uri=settings.mlflow_backend_uri or None,
            artifacts_destination=settings.mlflow_artifacts or None,
            s3_endpoint_url=settings.s3_endpoint_url or None,
        )
        server = self._start("mlflow", argv, {**env, MARKER: self.stack_id})
        took = wait_until(
            lambda: mlflow_healthy(self.tracking_uri),
            timeout=120,
            what="starting MLflow",
            component=server,
        )
        self.say(f"mlflow: healthy on {self.tracking_uri} after {took:.0f} s")

    def _start_api(self) -> None:
        settings = self.settings
        self._need_port(settings.api_port, "SOCIALSUGGEST_API_PORT")
        cli = str(Path(af.airflow_exe()).with_name("socialsuggest"))
        argv = [cli, "serve", "--host", settings.api_host, "--port", str(settings.api_port)]
        api = self._start("api", argv, self._env())
        url = f"http://{settings.api_host}:{settings.api_port}"
        took = wait_until(
            lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200,
            timeout=120,
            what="starting the suggestion API",
            component=api,
        )
        self.say(f"api: healthy on {url} after {took:.0f} s")

    def _start_airflow(self, components: tuple[str, ...]) -> None:
        settings = self.settings
        self._need_port(settings.airflow_port, "SOCIALSUGGEST_AIRFLOW_PORT")
        env = self._env()
        for step, args in (
            ("migrating its database", ["db", "migrate"]),
            (
                f"creating the {af.LAKE_WRITERS_POOL} pool (1 slot)",
                ["pools", "set", af.LAKE_WRITERS_POOL, "1", "tasks that rewrite lake files"],
            ),
            ("parsing the DAGs", ["dags", "reserialize"]),
        ):
            started = time.monotonic()
            af.airflow_cli(args, env)
            self.say(f"airflow: {step} took {time.monotonic() - started:.0f} s")
        for name in components:
            self._start(f"airflow-{name}", af.component_argv(name), env)
        url = af.airflow_url(settings)
        checked = tuple(c.replace("-", "_") for c in components if c != "api-server")
        took = wait_until(
            lambda: af.healthy(url, checked),
            timeout=240,
            what="starting Airflow",
            component=self.launched["airflow-api-server"],
        )
        self.say(f"airflow: {', '.join(components)} healthy on {url} after {took:.0f} s")

    # ------------------------------------------------------------- DAG runs

    def api(self) -> af.AirflowAPI:
        return af.AirflowAPI(af.airflow_url(self.settings), af.USER, af.password(self.settings))

    def unpause_all(self) -> list[str]:
        client = self.api()
        try:
            dag_ids = client.dag_ids()
            for dag_id in dag_ids:
                client.unpause(dag_id)
        finally:
            client.close()
        self.say(f"airflow: unpaused {', '.join(dag_ids)}")
        return dag_ids

    def first_run(
        self,
        dag_id: str = FIRST_DAG,
        *,
        conf: dict[str, Any] | None = None,
        timeout: float = 3600,
        wait_for_schedule: float = 180,
        since: datetime | None = None,
    ) -> af.RunResult:
        """Follow the scheduled run unpausing made due, or trigger one when none is due.

        Deciding from the DAG's ``next_dagrun_run_after`` (not from whether a run has
        appeared yet) avoids a manual run racing the scheduler's into two runs. A DAG
        scheduled on an asset (``timetable_summary`` "Asset") gets its run from the
        producer's update: the newest asset-triggered run since ``since`` is followed
        (finished or not), and one is triggered only if none came within the wait.

        ``since``: when the DAGs were unpaused. A clock-scheduled run queued after it is
        followed even if it already ended: the families' first runs go side by side while
        the tag run is followed, and by then the next one is no longer due, so asking
        only "is one due" triggered a second, manual run of hashtags and trends.
        """
        client = self.api()
        try:
            dag = client.dag(dag_id)
            due = dag.get("next_dagrun_run_after")
            run_id, kind = None, "scheduled"
            if dag.get("timetable_summary") == "Asset":
                kind = "asset-triggered"
                run_id = self._await_run(
                    client, dag_id, wait_for_schedule, _since("asset_triggered", since, "run_after")
                )
            else:
                if since is not None:  # unpausing's run may have come and gone already
                    run_id = self._await_run(
                        client, dag_id, 0, _since("scheduled", since, "queued_at", "start_date")
                    )
                if run_id is None and due and datetime.fromisoformat(due) <= datetime.now(UTC):
                    run_id = self._await_run(client, dag_id, wait_for_schedule, _unfinished)
            if run_id is None:
                run_id = client.trigger(dag_id, conf)["dag_run_id"]
                self.say(f"airflow: triggered {dag_id} ({run_id})")
            else:
                self.say(f"airflow: following the {kind} {dag_id} run ({run_id})")
            return client.follow(dag_id, run_id, timeout=timeout, say=self.say)
        finally:
            client.close()

    def trigger_and_follow(
        self, dag_id: str = FIRST_DAG, *, conf: dict[str, Any] | None = None, timeout: float = 3600
    ) -> af.RunResult:
        """A manual run (what the UI's trigger button does), followed to its end."""
        client = self.api()
        try:
            run_id = client.trigger(dag_id, conf)["dag_run_id"]
            self.say(f"airflow: triggered {dag_id} ({run_id})")
            return client.follow(dag_id, run_id, timeout=timeout, say=self.say)
        finally:
            client.close()

    def _await_run(
        self,
        client: af.AirflowAPI,
        dag_id: str,
        wait: float,
        wanted: Callable[[dict[str, Any]], bool],
    ) -> str | None:
        """The newest recent run ``wanted`` accepts, polled for up to ``wait`` seconds."""
        deadline = time.monotonic() + wait
        while True:  # asked at least once, even with no wait
            for run in client.runs(dag_id):  # newest first
                if wanted(run):
                    return str(run["dag_run_id"])
            if time.monotonic() >= deadline:
                return None
            time.sleep(2)

    # ---------------------------------------------------------- down/status

    def down(self) -> int:
        """Stop every component (reverse start order), then what escaped their groups."""
        described = self._read_description()
        stack_id = self.stack_id or (described or {}).get("id", "")
        pids: dict[str, int] = (described or {}).get("pids", {})
        tree = descendants(list(pids.values()))  # before stopping reparents anything
        for name, pid in reversed(list(pids.items())):
            launched = self.launched.get(name) or Launched(name, pid, self.state / "logs")
            stop_group(launched, grace=20 if name.startswith("airflow") else 10)
            (self.state / f"{name}.pid").unlink(missing_ok=True)
            self.say(f"stopped {name} (pid {pid})")
        swept = sweep(stack_id, tree) if stack_id else 0
        if swept:
            self.say(f"stopped {swept} more process(es) that had left their group")
        (self.state / "stack.json").unlink(missing_ok=True)
        self.launched.clear()
        return swept

    def status(self) -> list[ComponentStatus]:
        described = self._read_description() or {}
        rows = []
        for name, pid in described.get("pids", {}).items():
            members = group_members(pid)
            rows.append(
                ComponentStatus(name, pid, pid_alive(pid), len(members), memory_mib(members))
            )
        return rows

    def _describe(self, **extra: Any) -> None:
        described = self._read_description() or {}
        described.update(
            {
                "id": self.stack_id,
                "home": str(self.settings.home),
                "urls": self.urls(),
                "pids": {
                    **described.get("pids", {}),
                    **{n: launched.pid for n, launched in self.launched.items()},
                },
                **extra,
            }
        )
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / "stack.json").write_text(json.dumps(described, indent=1))

    def _read_description(self) -> dict[str, Any] | None:
        path = self.state / "stack.json"
        if not path.is_file():
            return None
        described: dict[str, Any] = json.loads(path.read_text())
        return described

    def urls(self) -> dict[str, str]:
        settings = self.settings
        return {
            "airflow": af.airflow_url(settings),
            "mlflow": self.tracking_uri,
            "api": f"http://{settings.api_host}:{settings.api_port}",
        }

    # ---------------------------------------------------------------- once

    def once(self, dag_id: str = FIRST_DAG, conf: dict[str, Any] | None = None) -> int:
        """``airflow dags test`` of one DAG beside MLflow; the run's exit status."""
        self._refuse_if_running()
        self.stack_id = uuid.uuid4().hex[:12]
        self._describe(started_at=datetime.now(UTC).isoformat(), mode="once")
        try:
            self._start_mlflow()
            env = self._env()
            af.airflow_cli(["db", "migrate"], env)
            self.say(f"airflow: dags test {dag_id} (logs below)")
            done = subprocess.run(
                [af.airflow_exe(), "dags", "test", dag_id, "-c", json.dumps(conf or {})],
                env=env,
                check=False,
            )
            return done.returncode
        finally:
            self.down()

"""Start and stop a real MLflow tracking server (SQLite backend, local artifacts).

`make run` and the tests use a real server rather than a file store so that the
registry, aliases and artifact proxying behave exactly as in production. The lean
settings (one worker, job runner off) come from ../shared/STACK.md: 8 s to healthy,
~430 MiB instead of 26 s and 2.4 GiB.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path


@dataclass
class MlflowServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server and every worker it spawned (its own process group)."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def healthy(url: str, timeout: float = 2.0) -> bool:
    """Does the MLflow server at ``url`` answer /health (one quick try, no retries)?"""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def ensure_server(
    home: Path,
    *,
    port: int,
    host: str = "127.0.0.1",
    backend_store_uri: str | None = None,
    artifacts_destination: str | None = None,
    s3_endpoint_url: str | None = None,
) -> tuple[str, MlflowServer | None]:
    """Reuse the server an earlier `make run` left on ``port``, else start one.

    Returns the URL and the server this call started (None when one was reused).

    Only a server this home started is reused (its PID file names a live process
    that answers /health); anything else on the port is an error, not a guess.
    """
    pid_file = home / f"mlflow-server-{port}.pid"
    url = f"http://{host}:{port}"
    if pid_file.is_file():
        pid = int(pid_file.read_text().strip() or 0)
        if pid and _alive(pid) and healthy(url):
            return url, None
        pid_file.unlink()
    server = start_server(
        home,
        port=port,
        host=host,
        backend_store_uri=backend_store_uri,
        artifacts_destination=artifacts_destination,
        s3_endpoint_url=s3_endpoint_url,
    )
    pid_file.write_text(str(server.process.pid))
    return url, server


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def server_command(
    home: Path,
    *,
    port: int,
    host: str = "127.0.0.1",
    backend_store_uri: str | None = None,
    artifacts_destination: str | None = None,
    s3_endpoint_url: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The ``mlflow server`` command line and environment (lean: one worker, no job runner).

    Shared by :func:`start_server` and the local stack's supervisor, so both start
    the same server.
    """
    mlflow_exe = Path(sys.executable).with_name("mlflow")
    command = [
        str(mlflow_exe) if mlflow_exe.exists() else "mlflow",
        "server",
        "--backend-store-uri",
        backend_store_uri or f"sqlite:///{(home / 'mlflow.db').resolve()}",
        "--artifacts-destination", artifacts_destination or str((home / "mlartifacts").resolve()),
        "--serve-artifacts",
        "--host", host,
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    if s3_endpoint_url:  # artifacts proxied to an S3-compatible store (services profile)
        env["MLFLOW_S3_ENDPOINT_URL"] = s3_endpoint_url
    return command, env


def start_server(
    home: Path,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    timeout: float = 90.0,
    backend_store_uri: str | None = None,
    artifacts_destination: str | None = None,
    s3_endpoint_url: str | None = None,
) -> MlflowServer:
    """Start ``mlflow server``; return once it answers.

    The backend is ``home/mlflow.db`` (SQLite, embedded profile) unless a
    ``backend_store_uri`` is given (``postgresql://…`` in the services profile).
    """
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    url = f"http://{host}:{port}"
    log_path = home / f"mlflow-server-{port}.log"
    command, env = server_command(
        home,
        port=port,
        host=host,
        backend_store_uri=backend_store_uri,
        artifacts_destination=artifacts_destination,
        s3_endpoint_url=s3_endpoint_url,
    )
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    server = MlflowServer(url, process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"mlflow server exited with {process.returncode}:\n{tail}")
        if healthy(url):
            return server
        time.sleep(0.5)
    server.stop()
    raise TimeoutError(f"mlflow server at {url} not healthy after {timeout:.0f}s (log: {log_path})")

"""The processes the local stack starts: own session, PID file, log, and an env marker.

Why each component gets its own session: ``airflow standalone`` leaves its scheduler,
API server and DAG processor running when its parent gets SIGTERM (../shared/STACK.md),
so the stack starts every component itself and stops each *process group*.

What escapes a group (a task runner that calls ``setsid``) is still found two ways:
as a *descendant* of a component (snapshotted before anything is stopped), and by
the marker ``SOCIALSUGGEST_STACK=<stack id>`` every process inherits in its
environment. Neither alone is enough: an orphan is reparented away from the tree,
and a process that sets its title (Airflow's workers, ``setproctitle``) overwrites
the environment block ``/proc`` shows.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

MARKER = "SOCIALSUGGEST_STACK"


class StackError(RuntimeError):
    """A component could not be started or did not become healthy; the message says which."""


@dataclass
class Launched:
    name: str
    pid: int
    log: Path
    process: subprocess.Popen[bytes] | None = None  # None when adopted from a PID file

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return pid_alive(self.pid)


def launch(name: str, argv: list[str], env: Mapping[str, str], state: Path) -> Launched:
    """Start ``argv`` in a new session, output to ``state/logs/<name>.log``, PID file beside."""
    (state / "logs").mkdir(parents=True, exist_ok=True)
    log = state / "logs" / f"{name}.log"
    with open(log, "ab") as sink:
        process = subprocess.Popen(
            argv,
            env=dict(env),
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped as one
        )
    (state / f"{name}.pid").write_text(str(process.pid))
    return Launched(name, process.pid, log, process)


def pid_alive(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def stop_group(launched: Launched, grace: float = 20.0) -> None:
    """SIGTERM the component's process group, wait ``grace`` seconds, then SIGKILL it."""
    _signal_group(launched.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _group_alive(launched):
        time.sleep(0.2)
    if _group_alive(launched):
        _signal_group(launched.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _group_alive(launched):
            time.sleep(0.1)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _group_alive(launched: Launched) -> bool:
    if launched.process is not None:
        launched.process.poll()  # reap our own child so a zombie leader does not count
    return any(_pgid(p) == launched.pid for p in _live_processes())


def _pgid(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except OSError:
        return None


def _live_processes() -> Iterator[psutil.Process]:
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.status() != psutil.STATUS_ZOMBIE:
                yield process


def marked(stack_id: str) -> list[psutil.Process]:
    """Live processes whose environment carries this stack's marker."""
    found = []
    for process in _live_processes():
        with contextlib.suppress(psutil.Error):
            if process.environ().get(MARKER) == stack_id:
                found.append(process)
    return found


def descendants(pids: list[int]) -> list[psutil.Process]:
    """Every live process below these PIDs (and the PIDs themselves)."""
    found: dict[int, psutil.Process] = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            for process in [root, *root.children(recursive=True)]:
                found[process.pid] = process
    return list(found.values())


def sweep(stack_id: str, also: list[psutil.Process], grace: float = 10.0) -> int:
    """Stop whatever is still alive of ``also`` or carries the marker; return how many."""
    found = {p.pid: p for p in marked(stack_id)}
    for process in also:
        with contextlib.suppress(psutil.Error):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                found[process.pid] = process
    left = list(found.values())
    for process in left:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(left, timeout=grace)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=5)
    return len(left)


def memory_mib(processes: list[psutil.Process]) -> float:
    """Summed PSS (shared pages split between sharers; RSS where PSS is unavailable)."""
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            info = process.memory_full_info()
            total += getattr(info, "pss", info.rss)
    return total / 2**20


def group_members(pgid: int) -> list[psutil.Process]:
    return [p for p in _live_processes() if _pgid(p) == pgid]


def port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    component: Launched | None = None,
    interval: float = 1.0,
) -> float:
    """Poll ``check`` until true; fail early, with the log's tail, if the component died."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        with contextlib.suppress(Exception):
            if check():
                return time.monotonic() - start
        if component is not None and not component.alive():
            raise StackError(f"{component.name} exited while {what}:\n{tail(component.log)}")
        time.sleep(interval)
    where = f" (log: {component.log})" if component else ""
    raise StackError(f"timed out after {timeout:.0f}s {what}{where}")


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""

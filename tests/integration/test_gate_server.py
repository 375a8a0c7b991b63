"""The integration gate's serving process never outlives the process that started it.

A training task can be killed at any point (Airflow timeout, OOM killer, Ctrl-C); its
``finally`` then never runs, so the gate server must notice on its own. The parent is
killed for real with SIGKILL, also while the server is still importing (the case where
asking ``getppid()`` at start-up would already name the adoptive parent).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PARENT = """
import sys, threading, time
from socialsuggest.quality.integration import GateServer
server = GateServer("http://127.0.0.1:9")  # nothing is loaded: no registry needed
if sys.argv[1] == "started":
    server._ensure()
else:  # die while the child is still starting
    threading.Thread(target=server._ensure, daemon=True).start()
    while server.pid is None:
        time.sleep(0.01)
print(server.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited, only its process-table entry remains


@pytest.mark.parametrize("when", ["started", "starting"])
def test_the_gate_server_exits_when_its_parent_is_killed(when: str) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, when], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        folder = next(
            Path(arg).parent
            for arg in Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
            if arg.endswith("/port")
        )
        assert _alive(pid)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
    started = time.monotonic()
    while _alive(pid):
        assert time.monotonic() - started < 60, f"gate server {pid} outlived its parent"
        time.sleep(0.2)
    print(f"\ngate server ({when}) exited {time.monotonic() - started:.1f}s after its parent")
    assert not folder.exists()  # it removed its port file and log too

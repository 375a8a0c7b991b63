"""Ports and in-process API servers for the tests that start real servers.

Imported by the conftests and test modules as ``servers`` (pytest puts ``tests/`` on
``sys.path`` for ``tests/conftest.py``).

Fixed ports made every run after a killed one fail with "address already in use" (the
killed run's store or node was still listening): :func:`pick_port` keeps the usual
port when it is free and otherwise takes another one.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from fastapi import FastAPI

HOST = "127.0.0.1"
#: Candidates after the preferred port: below Linux's ephemeral range (32768+), so an
#: outgoing connection's port is rarely in the way.
_FALLBACK = (20000, 32000)


def port_is_free(port: int, host: str = HOST) -> bool:
    """Can a server bind ``host:port`` now? (Without SO_REUSEADDR: a port still in
    TIME_WAIT counts as taken, which only makes the choice more cautious.)"""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(preferred: int, *, offsets: Sequence[int] = (0,), attempts: int = 200) -> int:
    """``preferred`` if it (plus every offset: ports a server derives from it) is free,
    else the first free random candidate.

    The usual port keeps a developer's URLs and logs familiar; the fallback keeps a
    stale server from a killed run from failing every later one.
    """
    room = 65535 - max(offsets)
    rng = random.Random()
    candidates = [preferred] + [
        rng.randrange(_FALLBACK[0], min(_FALLBACK[1], room)) for _ in range(attempts)
    ]
    for base in candidates:
        if base <= room and all(port_is_free(base + offset) for offset in offsets):
            return base
    raise RuntimeError(f"no free port for offsets {list(offsets)} (preferred {preferred})")


def _ready(response: httpx.Response) -> bool:
    return response.status_code == 200


@contextmanager
def running_app(
    app: FastAPI,
    *,
    path: str = "/readyz",
    ready: Callable[[httpx.Response], bool] = _ready,
    timeout: float = 30.0,
    stop_timeout: float = 10.0,
) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yield its URL once
    ``ready(GET path)`` holds, stop the server on exit.

    Real HTTP (not a TestClient) so that the app's lifespan, its background reload
    threads and the network path are those of production. ``stop_timeout`` bounds the
    shutdown, which flushes the app's request log.
    """
    import uvicorn

    from socialsuggest.registry import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    url = f"http://{HOST}:{port}"
    try:
        _wait_until(url + path, ready, timeout, thread)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=stop_timeout)


def _wait_until(
    url: str, ready: Callable[[httpx.Response], bool], timeout: float, thread: threading.Thread
) -> None:
    """Poll ``url`` until ``ready`` holds; fail clearly on a timeout or a dead server."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        assert thread.is_alive(), f"the app at {url} stopped before it was ready"
        try:
            response = httpx.get(url, timeout=1)
            if ready(response):
                return
            last = f"{response.status_code} {response.text[:300]}"
        except httpx.TransportError as error:
            last = type(error).__name__
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready after {timeout:.0f}s (last: {last})")

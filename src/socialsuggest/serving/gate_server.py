"""The integration gate's serving process: the real app, serving exactly what it is told.

``python -m socialsuggest.serving.gate_server --tracking-uri URI --port-file FILE``

The integration gate must judge a candidate the way production will run it: loaded
from the registry in a *separate* serving process (its own imports, its own pickle
load, HTTP over a socket), not inside the training process whose memory already
holds the classes and the fitted model. So this is :func:`create_app` itself, with a
:class:`ModelCache` that never follows an alias, plus gate-only routes on loopback:

- ``PUT /gate/models/{org}`` ``{"version": N}``: load version N of ``<family>.<org>``
  from the registry and serve it (several orgs at once: one process per batch);
- ``DELETE /gate/models/{org}``: stop serving it (frees memory between orgs);
- ``GET /gate/models/{org}/vocabulary``: which tags the loaded model may suggest.

The process binds an ephemeral loopback port (no race with another process picking
the same free port) and writes it to ``--port-file`` once listening. It exits on its
own when its parent dies, so a killed training task never leaves a server behind.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from socialsuggest.events.schemas import ORG_PATTERN
from socialsuggest.registry import Registry, model_name
from socialsuggest.serving.app import create_app
from socialsuggest.serving.cache import ModelCache

log = logging.getLogger(__name__)


class PinRequest(BaseModel):
    model_config = {"extra": "forbid"}

    version: int = Field(ge=1, description="the registered version to load and serve")


class PinResponse(BaseModel):
    ok: bool
    version: int
    error: str | None = None
    load_ms: float


class Vocabulary(BaseModel):
    """Tags the loaded model may suggest, from its own lifecycle state."""

    version: int
    model: list[str] = Field(description="modelled tags enabled by the gate, not archived")
    recent: list[str] = Field(description="the org's recent tags (top-up), not archived")
    archived: list[str]


def build_app(registry: Registry, family: str = "tags") -> FastAPI:
    """The serving app over a fixed cache, plus the gate's pin/unpin/vocabulary routes."""
    # no alert: a candidate that does not load fails its gate, it is not an incident
    cache = ModelCache(registry, family=family, alert=None)
    app = create_app(registry, family=family, cache=cache)

    def _org(org: str) -> str:
        if not ORG_PATTERN.fullmatch(org):
            raise HTTPException(400, detail=f"org: {org!r} is not a valid org id")
        return org

    @app.put("/gate/models/{org}", response_model=PinResponse)
    def pin(org: str, body: PinRequest) -> PinResponse:
        started = time.perf_counter()
        try:
            info = registry.version(model_name(family, _org(org)), body.version)
        except HTTPException:
            raise
        except Exception as exc:  # no such version, registry down: the gate names it
            error = f"{type(exc).__name__}: {exc}"
            return PinResponse(ok=False, version=body.version, error=error, load_ms=0.0)
        event = cache.load(info)
        load_ms = (time.perf_counter() - started) * 1000
        return PinResponse(ok=event.ok, version=info.version, error=event.error, load_ms=load_ms)

    @app.delete("/gate/models/{org}", status_code=204)
    def unpin(org: str) -> None:
        cache.unload(_org(org))

    @app.get("/gate/models/{org}/vocabulary", response_model=Vocabulary)
    def vocabulary(org: str) -> Vocabulary:
        loaded = cache.get(_org(org))
        if loaded is None:
            raise HTTPException(404, detail=f"no version of {org!r} is loaded")
        tag_model: Any = getattr(loaded.model, "model", None)
        if tag_model is None or not hasattr(tag_model, "active_mask"):
            raise HTTPException(422, detail=f"{loaded.name} exposes no tag lifecycle")
        active = [t for t, on in zip(tag_model.tags, tag_model.active_mask, strict=True) if on]
        archived = set(tag_model.archived)
        return Vocabulary(
            version=loaded.version,
            model=sorted(active),
            recent=sorted(t for t in tag_model.recent_tags if t not in archived),
            archived=sorted(archived),
        )

    return app


def _exit_with_parent(parent: int, server: uvicorn.Server) -> None:
    """Stop serving when the process that started us is gone (killed task, crash)."""
    while not server.should_exit:
        if os.getppid() != parent:
            log.warning("gate server: parent %s exited; stopping", parent)
            server.should_exit = True
            return
        time.sleep(1.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True, help="the MLflow registry")
    parser.add_argument("--family", default="tags")
    parser.add_argument("--port-file", required=True, type=Path, help="written once listening")
    parser.add_argument(
        "--parent-pid", type=int, default=None, help="exit when this process is gone"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")

    app = build_app(Registry(args.tracking_uri), args.family)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # loopback only: these routes load arbitrary versions
    port = sock.getsockname()[1]
    # a load stuck in the registry client's retries must not hold the process open
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    # from the caller, not getppid() here: the parent may die during our imports
    parent = args.parent_pid or os.getppid()
    threading.Thread(
        target=_exit_with_parent, args=(parent, server), name="parent-watch", daemon=True
    ).start()

    def announce() -> None:  # after the socket listens: the port file means "ready"
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if not server.started:
            return
        partial = args.port_file.with_suffix(".partial")
        partial.write_text(str(port))
        partial.replace(args.port_file)

    threading.Thread(target=announce, name="announce", daemon=True).start()
    server.run(sockets=[sock])
    if os.getppid() != parent:  # orphaned: nobody will remove our folder (port file, log)
        shutil.rmtree(args.port_file.parent, ignore_errors=True)
    # a request thread still inside a registry call would keep the interpreter alive;
    # this process holds nothing to flush (no request log), so leave at once
    logging.shutdown()
    os._exit(0)


if __name__ == "__main__":
    main()

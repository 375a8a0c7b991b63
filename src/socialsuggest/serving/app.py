"""The suggestion API (FastAPI): versioned routes, per-org models, hot reload.

Routes follow ARCHITECTURE.md: ``POST /v1/orgs/{org}/tags:suggest``, ``/healthz``
(the process is alive) and ``/readyz`` (the registry answered recently and the
first model load finished: a load balancer should only then send traffic).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Literal

import pandas as pd
from fastapi import FastAPI, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from socialsuggest.events.schemas import ORG_PATTERN, MessageType, Network
from socialsuggest.registry import Registry
from socialsuggest.serving.cache import ModelCache

log = logging.getLogger(__name__)
OrgPath = Annotated[str, Path(description="org id", max_length=63)]


class SuggestRequest(BaseModel):
    model_config = {"extra": "forbid"}

    text: str = Field(min_length=1, max_length=10_000, description="the incoming message")
    network: Network = Network.TWITTER
    message_type: MessageType = MessageType.MENTION
    k: int = Field(default=3, ge=1, le=20, description="how many tags to suggest")


class SuggestionOut(BaseModel):
    tag: str
    score: float
    source: Literal["model", "recent"]


class SuggestResponse(BaseModel):
    request_id: str
    org: str
    model: str
    model_version: int
    suggestions: list[SuggestionOut]


def create_app(registry: Registry, *, poll_seconds: float = 2.0, family: str = "tags") -> FastAPI:
    cache = ModelCache(registry, family=family, poll_seconds=poll_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            cache.refresh()
        except Exception as exc:  # start anyway; /readyz says not ready until it works
            log.warning("initial model load failed: %s", type(exc).__name__)
        cache.start()
        yield
        cache.stop()

    app = FastAPI(title="socialsuggest", version="1", lifespan=lifespan)
    app.state.cache = cache

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "reason": e["msg"]}
            for e in exc.errors()
        ]
        return JSONResponse(
            status_code=422, content={"detail": "invalid request", "errors": errors}
        )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        fresh = cache.last_refresh_ok is not None and (
            time.time() - cache.last_refresh_ok < max(30.0, 5 * poll_seconds)
        )
        body = {"ready": fresh, "models": cache.loaded()}
        return JSONResponse(status_code=200 if fresh else 503, content=body)

    @app.post("/v1/orgs/{org}/tags:suggest", response_model=SuggestResponse)
    def suggest_tags(org: OrgPath, body: SuggestRequest) -> SuggestResponse:
        if not ORG_PATTERN.fullmatch(org):
            raise HTTPException(400, detail=f"org: {org!r} is not a valid org id")
        loaded = cache.get(org)  # one reference for the whole request: swaps can't split it
        if loaded is None:
            raise HTTPException(404, detail=f"org {org!r} has no production {family} model")
        frame = pd.DataFrame(
            [{"text": body.text, "network": body.network, "message_type": body.message_type}]
        )
        suggestions = loaded.model.suggest_frame(frame, k=body.k)[0]
        return SuggestResponse(
            request_id=uuid.uuid4().hex,
            org=org,
            model=loaded.name,
            model_version=loaded.version,
            suggestions=[SuggestionOut(**s) for s in suggestions],
        )

    return app

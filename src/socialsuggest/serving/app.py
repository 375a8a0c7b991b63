"""The suggestion API (FastAPI): versioned routes, per-org models, hot reload.

Routes follow ARCHITECTURE.md: ``POST /v1/orgs/{org}/tags:suggest``,
``POST /v1/orgs/{org}/feedback`` (which suggestions the user accepted or rejected),
``/healthz`` (the process is alive) and ``/readyz`` (the registry answered recently
and the first model load finished: a load balancer should only then send traffic).
Org routes need the org's API key (:mod:`socialsuggest.serving.auth`); oversized
bodies are refused before parsing (:mod:`socialsuggest.serving.limits`).

With a :class:`~socialsuggest.serving.logs.RequestLog`, every served suggestion and
every feedback is logged to the lake's ``logs`` zone, catalogued and erasable; the
optional ``author_id`` / ``agent_id`` of a request are personal data and go there
only, never to the process log.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import BackgroundTasks, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from socialsuggest.config import Settings, load_settings
from socialsuggest.events.schemas import (
    ORG_PATTERN,
    PERSONAL,
    Hashtag,
    Identifier,
    MessageType,
    Network,
    SubjectId,
    TagName,
)
from socialsuggest.lake import Lake
from socialsuggest.registry import Registry
from socialsuggest.serving.acceptance import LiveAcceptance, LiveAcceptanceReport
from socialsuggest.serving.auth import KeyStore, document_security, org_access
from socialsuggest.serving.cache import LoadedModel, ModelCache
from socialsuggest.serving.challengers import Challengers
from socialsuggest.serving.experiments import Variant, assign
from socialsuggest.serving.limits import DEFAULT_MAX_BODY_BYTES, BodySizeLimit
from socialsuggest.serving.logs import RequestLog
from socialsuggest.serving.metrics import ServingMetrics
from socialsuggest.serving.metrics import install as install_metrics
from socialsuggest.serving.trends import TrendsFeed

log = logging.getLogger(__name__)
OrgPath = Annotated[str, Path(description="org id", max_length=63)]


class SuggestRequest(BaseModel):
    model_config = {"extra": "forbid"}

    text: str = Field(min_length=1, max_length=10_000, description="the incoming message")
    network: Network = Network.TWITTER
    message_type: MessageType = MessageType.MENTION
    k: int = Field(default=3, ge=1, le=20, description="how many tags to suggest")
    author_id: SubjectId | None = Field(
        default=None,
        description="personal data: who wrote the message (logged only to the lake's request "
        "log, catalogued and erasable)",
        json_schema_extra=PERSONAL,
    )
    agent_id: SubjectId | None = Field(
        default=None,
        description="personal data: the user of your tool asking for suggestions (logged only "
        "to the lake's request log, catalogued and erasable)",
        json_schema_extra=PERSONAL,
    )
    session_id: Identifier | None = Field(
        default=None,
        description="an opaque session of your tool: keeps one session on one variant of an "
        "A/B experiment when no agent_id is sent (never logged)",
    )


class SuggestionOut(BaseModel):
    tag: str
    score: float
    source: Literal["model", "recent"]


class SuggestResponse(BaseModel):
    request_id: str
    org: str
    model: str
    model_version: int
    variant: Literal["champion", "challenger"] = Field(
        default="champion", description="which side of an A/B experiment answered"
    )
    suggestions: list[SuggestionOut]


class HashtagRequest(BaseModel):
    model_config = {"extra": "forbid"}

    text: str = Field(min_length=1, max_length=10_000, description="the drafted post")
    hashtags: list[Hashtag] = Field(
        default_factory=list,
        max_length=30,
        description="hashtags already chosen (``#words`` in the text count too); "
        "ones the model does not know are ignored",
    )
    k: int = Field(default=3, ge=1, le=20, description="how many hashtags to suggest")


class HashtagOut(BaseModel):
    hashtag: str
    score: float
    source: Literal["cooccurrence", "content", "popular"]


class HashtagResponse(BaseModel):
    request_id: str
    org: str
    model: str
    model_version: int
    suggestions: list[HashtagOut]


class ReplyRequest(BaseModel):
    model_config = {"extra": "forbid"}

    text: str = Field(min_length=1, max_length=10_000, description="the inbound message")
    k: int = Field(default=3, ge=1, le=20, description="how many saved replies to rank")


class RankedReply(BaseModel):
    reply_id: str
    score: float
    text: str | None = Field(
        default=None, description="a bootstrapped template's text (names as <name>)"
    )


class ReplyResponse(BaseModel):
    request_id: str
    org: str
    model: str
    model_version: int
    label_source: Literal["chosen", "bootstrap"] = Field(
        description="chosen: learned from saved-reply choices; bootstrap: from clustered "
        "outgoing replies (templates nobody saved yet)"
    )
    replies: list[RankedReply]


class TrendOut(BaseModel):
    hashtag: str
    score: float = Field(description="growth z-score, decayed since the peak")
    volume: float = Field(description="effective posts in the window (bot bursts damped)")
    baseline: float
    peak_at: str
    members: list[str] = Field(description="near-duplicate hashtags grouped under this one")


class TrendsResponse(BaseModel):
    generated_at: str
    model: str
    model_version: int | None
    window_start: str
    segment: str
    segments: list[str]
    trends: list[TrendOut]


class FeedbackRequest(BaseModel):
    model_config = {"extra": "forbid"}

    request_id: Identifier = Field(description="the request_id of the suggest response")
    accepted: list[TagName] = Field(
        default_factory=list, max_length=100, description="suggested tags the user applied"
    )
    rejected: list[TagName] = Field(
        default_factory=list, max_length=100, description="suggested tags the user dismissed"
    )
    agent_id: SubjectId | None = Field(
        default=None,
        description="personal data: the user giving the feedback (logged only to the lake's "
        "request log, catalogued and erasable)",
        json_schema_extra=PERSONAL,
    )


class FeedbackResponse(BaseModel):
    status: Literal["accepted"] = "accepted"


def _check_org(org: str) -> None:
    if not ORG_PATTERN.fullmatch(org):
        raise HTTPException(400, detail=f"org: {org!r} is not a valid org id")


def create_app(
    registry: Registry,
    *,
    poll_seconds: float = 2.0,
    family: str = "tags",
    request_log: RequestLog | None = None,
    cache: ModelCache | None = None,
    keys: KeyStore | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    hashtags: ModelCache | None = None,
    replies: ModelCache | None = None,
    trends: TrendsFeed | None = None,
) -> FastAPI:
    """The API; with ``request_log``, requests and feedback are logged to the lake.

    The app starts the log's background flusher and closes (flushes) it on shutdown.

    With ``keys``, every route whose path has ``{org}`` requires that org's API key or
    the admin key (:mod:`socialsuggest.serving.auth`). ``keys=None`` turns that off: only
    for harnesses nobody else calls (tests, the integration gate), never for a server
    others can reach -- ``socialsuggest serve`` always passes the home's key store.
    Bodies over ``max_body_bytes`` get 413 before they are parsed.

    ``hashtags``, ``replies``: the caches of those families' production models; an app
    that follows the registry (no ``cache`` given) builds them itself. ``trends``: where
    ``GET /v1/trends`` reads the newest lists (none: it answers 503).
    """
    follow = cache is None  # a given cache is pre-loaded and fixed (the integration gate)
    cache = cache or ModelCache(registry, family=family, poll_seconds=poll_seconds)
    if hashtags is None and follow:
        hashtags = ModelCache(registry, family="hashtags", poll_seconds=poll_seconds)
    if replies is None and follow:
        replies = ModelCache(registry, family="replies", poll_seconds=poll_seconds)
    others = [c for c in (hashtags, replies) if c is not None] if follow else []
    # experiments follow the registry too (a pinned app, the integration gate, has none)
    challengers = (
        Challengers(registry, family=family, poll_seconds=poll_seconds) if follow else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if follow:
            try:
                cache.refresh()
            except Exception as exc:  # start anyway; /readyz says not ready until it works
                log.warning("initial model load failed: %s", type(exc).__name__)
            cache.start()
        for other in others:  # another family's models: a failure here is logged, not fatal
            try:
                other.refresh()
            except Exception as exc:
                log.warning("initial %s load failed: %s", other.family, type(exc).__name__)
            other.start()
        if challengers is not None:
            try:
                challengers.refresh()
            except Exception as exc:  # experiments are optional: champions still serve
                log.warning("initial challenger load failed: %s", type(exc).__name__)
            challengers.start()
        if request_log is not None:
            request_log.start()
        try:
            yield
        finally:
            cache.stop()
            for other in others:
                other.stop()
            if challengers is not None:
                challengers.stop()
            if request_log is not None:
                request_log.close()

    app = FastAPI(
        title="socialsuggest",
        version="1",
        lifespan=lifespan,
        # app-wide, so every route with {org} -- also ones added later -- is guarded
        dependencies=[Depends(org_access(keys))] if keys is not None else None,
    )
    if keys is not None:
        document_security(app)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.state.cache = cache
    app.state.request_log = request_log
    # live acceptance and /metrics: per app, so apps sharing a process never mix counts
    acceptance = LiveAcceptance()
    metrics = ServingMetrics(cache, acceptance, family=family)
    metrics.follow_reloads(cache)  # chains any on_reload already set on the cache
    install_metrics(app, metrics)  # outermost middleware: also times 413s and auth failures
    app.state.acceptance, app.state.metrics = acceptance, metrics

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
        # a promoted version that does not load is reported, but the previous one still
        # serves: the process stays ready (taking it out of rotation would serve nothing)
        body = {"ready": fresh, "models": cache.loaded(), "load_failures": cache.failures()}
        if hashtags is not None:
            body["hashtag_models"] = hashtags.loaded()
        if replies is not None:
            body["reply_models"] = replies.loaded()
        return JSONResponse(status_code=200 if fresh else 503, content=body)

    # async: the model call is ~0.2 ms of CPU with no I/O (the request log only appends to
    # a buffer its own thread flushes), cheaper on the event loop than a threadpool hop
    @app.post("/v1/orgs/{org}/tags:suggest", response_model=SuggestResponse)
    async def suggest_tags(
        org: OrgPath, body: SuggestRequest, background: BackgroundTasks
    ) -> SuggestResponse:
        received_at = datetime.now(UTC)
        started = time.perf_counter()
        _check_org(org)
        champion = cache.get(org)  # one reference for the whole request: swaps can't split it
        if champion is None:
            raise HTTPException(404, detail=f"org {org!r} has no production {family} model")
        challenge = challengers.get(org) if challengers is not None else None
        experiment = challenge.experiment if challenge else None
        variant: Variant = assign(experiment, org, body.agent_id or body.session_id)
        loaded = challenge.model if challenge and variant == "challenger" else champion
        message = (body.text, body.network.value, body.message_type.value)
        suggestions = loaded.model.suggest_one(*message, k=body.k)
        response = SuggestResponse(
            request_id=uuid.uuid4().hex,
            org=org,
            model=loaded.name,
            model_version=loaded.version,
            variant=variant,
            suggestions=[SuggestionOut(**s) for s in suggestions],
        )
        acceptance.served(response.request_id, org, loaded.version, suggestions)
        if challenge is not None and experiment is not None and experiment.mode == "shadow":
            # after the response is sent: the user never waits for (or sees) the challenger
            background.add_task(
                _shadow, challenge.model, message, body.k, response.request_id, org,
                champion.version, received_at,
            )  # fmt: skip
        if request_log is not None:
            latency_ms = (time.perf_counter() - started) * 1000
            try:
                request_log.log_tag_request(
                    request_id=response.request_id,
                    org=org,
                    text=body.text,
                    network=body.network,
                    message_type=body.message_type,
                    k=body.k,
                    model_version=loaded.version,
                    suggestions=[s.model_dump() for s in response.suggestions],
                    latency_ms=latency_ms,
                    author_id=body.author_id,
                    agent_id=body.agent_id,
                    received_at=received_at,
                )
            except Exception as exc:  # logging must never fail a served suggestion
                log.warning("request log: suggest not logged: %s", type(exc).__name__)
        return response

    def _shadow(
        challenger: LoadedModel,
        message: tuple[str, str, str],
        k: int,
        request_id: str,
        org: str,
        champion_version: int,
        received_at: datetime,
    ) -> None:
        """The challenger's answer to a request the champion served: logged, never shown."""
        started = time.perf_counter()
        try:
            suggestions = challenger.model.suggest_one(*message, k=k)
            if request_log is not None:
                request_log.log_shadow(
                    request_id=request_id,
                    org=org,
                    champion_version=champion_version,
                    challenger_version=challenger.version,
                    suggestions=suggestions,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    received_at=received_at,
                )
        except Exception as exc:  # a failing challenger must never touch users
            log.warning("shadow prediction of %s failed: %s", challenger.name,
                        type(exc).__name__)  # fmt: skip

    @app.post("/v1/orgs/{org}/hashtags:suggest", response_model=HashtagResponse)
    async def suggest_hashtags(org: OrgPath, body: HashtagRequest) -> HashtagResponse:
        """Hashtags for a drafted post: nearest to the hashtags it already has and to its
        words, plus the org's most used (the draft is not logged: it is unpublished text)."""
        _check_org(org)
        loaded = hashtags.get(org) if hashtags is not None else None
        if loaded is None:
            raise HTTPException(404, detail=f"org {org!r} has no production hashtags model")
        suggested = loaded.model.suggest_one(body.text, body.hashtags, k=body.k)
        return HashtagResponse(
            request_id=uuid.uuid4().hex, org=org, model=loaded.name,
            model_version=loaded.version, suggestions=[HashtagOut(**s) for s in suggested],
        )  # fmt: skip

    @app.post("/v1/orgs/{org}/replies:rank", response_model=ReplyResponse)
    async def rank_replies(org: OrgPath, body: ReplyRequest) -> ReplyResponse:
        """The org's saved replies ranked for an inbound message (not logged: the request
        log covers tag suggestions)."""
        _check_org(org)
        loaded = replies.get(org) if replies is not None else None
        if loaded is None:
            raise HTTPException(404, detail=f"org {org!r} has no production replies model")
        ranked = loaded.model.rank_one(body.text, k=body.k)
        return ReplyResponse(
            request_id=uuid.uuid4().hex, org=org, model=loaded.name,
            model_version=loaded.version,
            label_source=getattr(loaded.model.model, "label_source", "chosen"),
            replies=[RankedReply(**r) for r in ranked],
        )  # fmt: skip

    @app.get(
        "/v1/trends",
        response_model=TrendsResponse,
        responses={
            404: {"description": "the segment has no trend list"},
            503: {"description": "no trend lists computed yet (trends_hourly has not run)"},
        },
    )
    def current_trends(
        segment: Annotated[str, Query(max_length=40, description="all or a network")] = "all",
        limit: Annotated[int, Query(ge=1, le=50)] = 10,
    ) -> TrendsResponse:
        """The newest window's trending hashtags over every org's posts (global lists:
        hashtags and counts only), overall or per network."""
        doc = trends.latest() if trends is not None else None
        if doc is None:
            raise HTTPException(503, detail="no trends computed yet (run trends_hourly)")
        lists = doc["segments"]
        fields = list(TrendOut.model_fields)
        if segment not in lists:
            raise HTTPException(
                404, detail=f"segment: {segment!r} has no trends; known: {sorted(lists)}"
            )
        return TrendsResponse(
            generated_at=doc["generated_at"], model=doc["model"],
            model_version=doc["model_version"], window_start=doc["window"]["start"],
            segment=segment, segments=sorted(lists),
            trends=[TrendOut(**{k: t[k] for k in fields}) for t in lists[segment][:limit]],
        )  # fmt: skip

    @app.get("/v1/orgs/{org}/experiment")
    def experiment_status(org: OrgPath) -> dict[str, object]:
        """The org's running experiment as this process serves it (or none)."""
        _check_org(org)
        challenge = challengers.get(org) if challengers is not None else None
        if challenge is None:
            return {"org": org, "experiment": None}
        return {"org": org, "experiment": challenge.experiment.__dict__,
                "challenger_version": challenge.model.version}  # fmt: skip

    @app.post(
        "/v1/orgs/{org}/feedback",
        status_code=202,
        response_model=FeedbackResponse,
        responses={503: {"description": "feedback is not recorded by this deployment"}},
    )
    def feedback(org: OrgPath, body: FeedbackRequest) -> FeedbackResponse:
        received_at = datetime.now(UTC)
        _check_org(org)
        if request_log is None:
            raise HTTPException(503, detail="feedback is not recorded: no request log configured")
        request_log.log_feedback(
            request_id=body.request_id,
            org=org,
            accepted=body.accepted,
            rejected=body.rejected,
            agent_id=body.agent_id,
            received_at=received_at,
        )
        # a request this process did not serve (or no longer remembers) is logged above
        # for the daily report, but cannot count live
        acceptance.feedback(body.request_id, org, body.accepted)
        return FeedbackResponse()

    @app.get("/v1/orgs/{org}/acceptance", response_model=LiveAcceptanceReport)
    def acceptance_since_start(org: OrgPath) -> LiveAcceptanceReport:
        """Shown, accepted and rate of the org's suggestions since this process started,
        per source and per model version (the daily report covers whole days)."""
        _check_org(org)
        return acceptance.report(org)

    return app


def app_from_settings(
    settings: Settings | None = None, registry: Registry | None = None
) -> FastAPI:
    """The app ``socialsuggest serve`` and ``run`` serve, built from settings alone (no CLI
    needed: ``uvicorn --factory socialsuggest.serving.app:app_from_settings`` runs the
    same); ``registry`` when the caller already has one (``run`` starts its own server)."""
    settings = settings or load_settings()
    return create_app(
        registry or Registry(settings.mlflow_tracking_uri or settings.resolved_tracking_uri),
        # its own Lake: the log batches catalog records per instance
        request_log=RequestLog(Lake.from_settings(settings)),
        poll_seconds=settings.api_poll_seconds,
        keys=KeyStore.from_settings(settings),
        max_body_bytes=settings.api_max_body_bytes,
        trends=TrendsFeed(Lake.from_settings(settings)),
    )

"""Prometheus metrics of one serving app, exposed at ``GET /metrics``.

Each app owns a :class:`~prometheus_client.CollectorRegistry`: the process-global
registry would make two apps in one process (tests, the integration gate booting a
candidate beside the serving app) share and double-count series, or refuse to
register the same names twice.

What is measured, and why it is safe to export:

- ``socialsuggest_http_requests_total`` and ``socialsuggest_http_request_duration_seconds``
  by method, **route template** (``/v1/orgs/{org}/tags:suggest``) and status. The
  template comes from the route Starlette matched, never from the raw URL: the URL
  holds org ids of every caller, valid or not, and would give every probing client
  its own series; an unmatched URL is labelled ``unmatched``.
- ``socialsuggest_model_loaded_version`` (gauge per family and org) is read from the
  model cache at scrape time, so it can never disagree with what serves.
- ``socialsuggest_model_reloads_total`` by family, org and outcome (``ok``/``failed``),
  fed by the cache's ``on_reload`` hook (any callback already set is kept, chained).
- ``socialsuggest_suggestions_shown_total`` / ``…_accepted_total`` by family, org,
  model version and source, the live ``socialsuggest_acceptance_rate`` by org and
  source, and ``socialsuggest_feedback_total`` by outcome (``matched`` or
  ``unknown_request``), all read from :class:`LiveAcceptance` at scrape time.

Label values are org ids, route templates, versions, sources and status codes only:
no message text, author or agent id, or request id reaches a label (an org label only
ever names an org that was served, so clients cannot mint series either).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from socialsuggest.serving.acceptance import SOURCES, LiveAcceptance, Tally
from socialsuggest.serving.cache import ModelCache, ReloadEvent

log = logging.getLogger(__name__)

UNMATCHED = "unmatched"
#: Seconds; dense around the 250 ms latency budget of the integration gate.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = "socialsuggest_http_requests"
LATENCY = "socialsuggest_http_request_duration_seconds"
RELOADS = "socialsuggest_model_reloads"
LOADED_VERSION = "socialsuggest_model_loaded_version"
SHOWN = "socialsuggest_suggestions_shown"
ACCEPTED = "socialsuggest_suggestions_accepted"
ACCEPTANCE_RATE = "socialsuggest_acceptance_rate"
FEEDBACK = "socialsuggest_feedback"


class ServingMetrics:
    """The metrics of one app: its own registry, request and reload instruments, and
    scrape-time views of the model cache and the live acceptance tracker."""

    def __init__(self, cache: ModelCache, acceptance: LiveAcceptance, *, family: str) -> None:
        self.family = family
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["method", "route", "status"]
        self.requests = Counter(
            REQUESTS, "HTTP requests by route template and status", labels, registry=self.registry
        )
        self.latency = Histogram(
            LATENCY,
            "HTTP request latency (seconds, until the response is sent) by route template",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.reloads = Counter(
            RELOADS,
            "model (re)load events of the serving cache by outcome",
            ["family", "org", "outcome"],
            registry=self.registry,
        )
        self.registry.register(_StateCollector(cache, acceptance, family))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def on_reload(self, event: ReloadEvent) -> None:
        family, _, org = event.name.partition(".")
        self.reloads.labels(family, org, "ok" if event.ok else "failed").inc()

    def follow_reloads(self, cache: ModelCache) -> None:
        """Count the cache's reload events, keeping (and still calling) its callback."""
        previous = cache.on_reload

        def counted(event: ReloadEvent) -> None:
            try:
                self.on_reload(event)
            except Exception as exc:  # a metric must never break a model swap
                log.warning("reload metric not counted: %s", type(exc).__name__)
            if previous is not None:
                previous(event)

        cache.on_reload = counted

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition (Prometheus text unless the scraper asks for OpenMetrics)."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


class _StateCollector:
    """Series computed at scrape time from the cache and the acceptance tracker."""

    def __init__(self, cache: ModelCache, acceptance: LiveAcceptance, family: str) -> None:
        self.cache = cache
        self.acceptance = acceptance
        self.family = family

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def _families(
        self,
    ) -> tuple[
        GaugeMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
        GaugeMetricFamily,
        CounterMetricFamily,
    ]:
        return (
            GaugeMetricFamily(
                LOADED_VERSION, "model version serving per org", labels=["family", "org"]
            ),
            CounterMetricFamily(
                SHOWN,
                "suggestions served",
                labels=["family", "org", "model_version", "source"],
            ),
            CounterMetricFamily(
                ACCEPTED,
                "served suggestions a feedback said the user applied",
                labels=["family", "org", "model_version", "source"],
            ),
            GaugeMetricFamily(
                ACCEPTANCE_RATE,
                "accepted / shown since process start (orgs and sources with shown > 0)",
                labels=["family", "org", "source"],
            ),
            CounterMetricFamily(
                FEEDBACK,
                "feedback received, by whether its request was known to this process",
                labels=["outcome"],
            ),
        )

    def collect(self) -> Iterator[Metric]:
        loaded, shown, accepted, rate, feedback = self._families()
        for org, version in sorted(self.cache.loaded().items()):
            loaded.add_metric([self.family, org], version)
        tallies = self.acceptance.tallies()
        per_source: dict[tuple[str, str], Tally] = {}
        for (org, version, source), tally in sorted(tallies.items()):
            labels = [self.family, org, str(version), source]
            shown.add_metric(labels, tally.shown)
            accepted.add_metric(labels, tally.accepted)
            per_source[(org, source)] = per_source.get((org, source), Tally()) + tally
        for (org, source), tally in sorted(per_source.items()):
            if tally.rate is not None and source in SOURCES:
                rate.add_metric([self.family, org, source], tally.rate)
        feedback.add_metric(["matched"], self.acceptance.feedback_matched)
        feedback.add_metric(["unknown_request"], self.acceptance.feedback_unknown)
        yield from (loaded, shown, accepted, rate, feedback)


def route_template(scope: Scope, router: Router) -> str:
    """The path template of the route that handled (or would handle) the request.

    Starlette records the matched route in the scope; a request answered before
    routing (e.g. by a middleware inside this one) is matched here against the same
    routes, so it is still labelled by template, never by its raw path.
    """
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    for route in router.routes:
        match, _ = route.matches(scope)
        if match != Match.NONE:
            candidate = getattr(route, "path", None)
            if isinstance(candidate, str):
                return candidate
    return UNMATCHED


class MetricsMiddleware:
    """Pure ASGI middleware: times each HTTP request and counts it by template and status.

    An exception escaping the app is counted as a 500 (what the server answers) and
    re-raised untouched.
    """

    def __init__(self, app: ASGIApp, metrics: ServingMetrics, router: Router) -> None:
        self.app = app
        self.metrics = metrics
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            try:
                self.metrics.observe(
                    str(scope.get("method", "")),
                    route_template(scope, self.router),
                    status,
                    time.perf_counter() - started,
                )
            except Exception as exc:  # never fail a request over its metric
                log.warning("request metric not recorded: %s", type(exc).__name__)


def install(app: FastAPI, metrics: ServingMetrics) -> None:
    """Add the request middleware and ``GET /metrics`` to ``app``."""
    app.add_middleware(MetricsMiddleware, metrics=metrics, router=app.router)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        body, content_type = metrics.render(request.headers.get("accept", ""))
        return Response(content=body, media_type=content_type)

"""Integration gate: the registered candidate, served by a real serving process, must answer.

The model gates judge metrics computed in the training process; this gate judges the
*artifact* as serving will use it. The version is loaded from the registry (pinned
requirements, pyfunc wrapper, pickled model) by a separate serving process
(:mod:`socialsuggest.serving.gate_server`: the production app on a loopback port,
serving exactly the pinned versions, never following an alias) and sent golden
requests over HTTP. A separate process matters: the training process already holds
the model's classes and fitted objects in memory, so an artifact that only loads
there (a missing module, a pickle that refers to ``__main__``) would pass in-process
and fail in production.

It catches what metrics cannot: an artifact that does not load, a wrapper that breaks
on edge-case input (empty after cleaning, emoji only, the longest allowed text),
malformed answers, suggestions outside the org's live tag set (a tag the per-tag gate
switched off, an archived tag), and latency far beyond budget. The golden texts are
the candidate's own test messages (held in memory only) plus fixed edge cases.

Cost: one process per batch of orgs (:class:`GateServer`, started on first use,
always stopped), then one model load and a few dozen requests per org.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from socialsuggest.registry import Registry, VersionInfo

EDGE_CASES: tuple[dict[str, Any], ...] = (
    {"text": "!!!", "network": "twitter", "message_type": "mention"},
    {"text": "🙂🙂🙂", "network": "instagram", "message_type": "comment"},
    {"text": "où est ma commande ? " * 20, "network": "facebook", "message_type": "direct_message"},
    {"text": "x" * 10_000, "network": "twitter", "message_type": "mention"},
)


#: Reasons a result keeps: a broken wrapper fails every golden request the same way,
#: and the registry's description holds 5,000 characters.
MAX_REASONS = 20


def p95(latencies_ms: Sequence[float]) -> float:
    """The nearest-rank 95th percentile: the smallest answer time at least 95% of the
    answers took no longer than (0 for none). One definition for both integration
    gates (HTTP here, in-process in ``pipeline.publishing``), so a tag model and a trend
    detector are held to the same number. Nearest-rank, not interpolated: it is an
    answer that was actually timed. (The HTTP gate took index ``int(0.95 n)``, one rank
    too high: the maximum of up to 20 answers.)"""
    if not latencies_ms:
        return 0.0
    ordered = sorted(latencies_ms)
    return float(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)])


def latency_verdict(timed_ms: Sequence[float], budget_ms: float) -> tuple[float, str | None]:
    """(``p95`` of the timed answers, the reason it breaks the budget or None): the one
    latency rule of both integration gates, so their reasons read the same."""
    value = p95(timed_ms)
    if value > budget_ms:
        return value, f"latency: p95 {value:.1f} ms > budget {budget_ms:g} ms"
    return value, None


@dataclass
class IntegrationResult:
    passed: bool
    requests: int
    p95_ms: float
    reasons: list[str] = field(default_factory=list)
    load_ms: float = 0.0
    first_ms: float = 0.0  # the first answer after the load (not part of the p95)
    timed: int = 0  # the warm answers the p95 is over

    def as_tags(self) -> dict[str, str]:
        return {
            "integration.passed": str(self.passed).lower(),
            "integration.requests": str(self.requests),
            "integration.p95_ms": f"{self.p95_ms:.1f}",
            "integration.load_ms": f"{self.load_ms:.0f}",
            "integration.first_ms": f"{self.first_ms:.1f}",
            "integration.timed": str(self.timed),
            "integration.reasons": "; ".join(self.reasons)[:5000],
        }


@dataclass(frozen=True)
class TagVocabulary:
    """The tags one org's model may suggest, by source.

    ``model`` suggestions must be modelled tags the per-tag gate enabled and the org
    has not archived; ``recent`` suggestions (the top-up) must be the org's recent
    tags, not archived. Built from the trained model in memory (:meth:`of`), it is a
    check independent of the artifact being served.
    """

    model: frozenset[str]
    recent: frozenset[str]
    archived: frozenset[str]

    @classmethod
    def of(cls, tag_model: Any) -> TagVocabulary:
        """From a :class:`~socialsuggest.models.tags.TagModel`."""
        archived = frozenset(str(t) for t in tag_model.archived)
        active = zip(tag_model.tags, tag_model.active_mask, strict=True)
        return cls(
            model=frozenset(str(t) for t, on in active if on),
            recent=frozenset(str(t) for t in tag_model.recent_tags if t not in archived),
            archived=archived,
        )

    def problem(self, tag: str, source: str) -> str | None:
        if tag in self.archived:
            return f"archived tag {tag!r} suggested"
        allowed = self.model if source == "model" else self.recent
        if tag not in allowed:
            what = "an enabled modelled tag" if source == "model" else "a recent tag of the org"
            return f"{source} suggestion {tag!r} is not {what}"
        return None


class GateServerError(RuntimeError):
    """The gate's serving process did not start or stopped answering."""


@dataclass(frozen=True)
class Pinned:
    ok: bool
    error: str | None
    load_ms: float


class GateServer:
    """One serving process for a batch of candidates: started on first use, always stopped.

    Use as a context manager (or call :meth:`stop` in a ``finally``). A process that
    dies (a candidate crashed it) is replaced for the next candidate; a process that
    cannot start fails every candidate of the batch at once, without a retry each.
    """

    def __init__(
        self,
        tracking_uri: str,
        *,
        family: str = "tags",
        start_timeout: float = 120.0,
        request_timeout: float = 30.0,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.family = family
        self.start_timeout = start_timeout
        self.request_timeout = request_timeout
        #: processes started so far (one per batch unless a candidate crashed one)
        self.starts = 0
        #: seconds each start took until the process listened
        self.start_seconds: list[float] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._client: httpx.Client | None = None
        self._folder: Path | None = None
        self._broken: str | None = None

    def __enter__(self) -> GateServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        """The running process's id (None before the first candidate or after stop)."""
        return self._process.pid if self._process is not None else None

    # ---- lifecycle ------------------------------------------------------------------
    def _ensure(self) -> httpx.Client:
        if self._broken is not None:
            raise GateServerError(self._broken)
        if self._process is not None and self._process.poll() is None and self._client:
            return self._client
        if self._process is not None:  # it died under the previous candidate
            self.stop()
        try:
            return self._start()
        except GateServerError as exc:
            self._broken = str(exc)
            raise

    def _start(self) -> httpx.Client:
        started = time.monotonic()
        self._folder = Path(tempfile.mkdtemp(prefix="socialsuggest-gate-"))
        port_file, log_path = self._folder / "port", self._folder / "server.log"
        command = [
            sys.executable, "-m", "socialsuggest.serving.gate_server",
            "--tracking-uri", self.tracking_uri, "--family", self.family,
            "--port-file", str(port_file), "--parent-pid", str(os.getpid()),
        ]  # fmt: skip
        try:
            with open(log_path, "wb") as log_handle:
                self._process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=log_handle, stderr=subprocess.STDOUT
                )
        except OSError as exc:
            self.stop()
            raise GateServerError(f"gate server did not start: {exc}") from None
        self.starts += 1
        while not port_file.exists():
            code = self._process.poll()
            if code is not None or time.monotonic() - started > self.start_timeout:
                tail = _tail(log_path)
                self.stop()
                state = (
                    f"exited with {code}"
                    if code is not None
                    else f"did not listen within {self.start_timeout:.0f}s"
                )
                raise GateServerError(f"gate server {state}: {tail}")
            time.sleep(0.05)
        port = int(port_file.read_text())
        self._client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=self.request_timeout
        )
        self.start_seconds.append(time.monotonic() - started)
        return self._client

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s) and remove its folder."""
        if self._client is not None:
            self._client.close()
            self._client = None
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    # ---- gate routes ----------------------------------------------------------------
    def pin(self, info: VersionInfo) -> Pinned:
        """Load ``info`` in the process and serve it (it replaces that org's previous pin)."""
        client = self._ensure()
        org = info.name.split(".", 1)[1]
        try:
            response = client.put(
                f"/gate/models/{org}",
                json={"version": info.version},
                timeout=max(self.request_timeout, self.start_timeout),
            )
        except httpx.TransportError as exc:
            raise GateServerError(f"loading {info.name} v{info.version}: {exc!r}") from None
        if response.status_code != 200:
            return Pinned(False, f"HTTP {response.status_code}: {response.text[:300]}", 0.0)
        body = response.json()
        return Pinned(bool(body["ok"]), body.get("error"), float(body["load_ms"]))

    def unpin(self, org: str) -> None:
        if self._client is not None and self._process is not None:
            with contextlib.suppress(httpx.HTTPError):
                self._client.delete(f"/gate/models/{org}")

    def vocabulary(self, org: str) -> TagVocabulary:
        """What the *loaded* model says it may suggest (when no trained model is at hand)."""
        response = self._ensure().get(f"/gate/models/{org}/vocabulary")
        if response.status_code != 200:
            raise GateServerError(f"vocabulary of {org}: HTTP {response.status_code}")
        body = response.json()
        return TagVocabulary(
            frozenset(body["model"]), frozenset(body["recent"]), frozenset(body["archived"])
        )

    def suggest(self, org: str, body: dict[str, Any]) -> tuple[int, Any, float]:
        """One request as a client sends it: status, JSON (or text), milliseconds."""
        client = self._ensure()
        started = time.perf_counter()
        response = client.post(f"/v1/orgs/{org}/tags:suggest", json=body)
        elapsed = (time.perf_counter() - started) * 1000
        try:
            payload: Any = response.json()
        except ValueError:
            payload = response.text[:200]
        return response.status_code, payload, elapsed


def integration_gate(
    registry: Registry,
    info: VersionInfo,
    golden: Sequence[dict[str, Any]] = (),
    *,
    k: int = 3,
    latency_budget_ms: float = 250.0,
    vocabulary: TagVocabulary | None = None,
    server: GateServer | None = None,
) -> IntegrationResult:
    """Serve ``info`` from a real serving process and check every golden answer.

    ``server``: a batch's shared process (see :class:`GateServer`); without one, a
    process is started and stopped for this version alone. ``vocabulary``: the tags
    the trained model may suggest; without it, the loaded model's own lifecycle state
    is asked for (which still catches a wrapper suggesting switched-off tags).
    """
    if server is None:
        with GateServer(registry.tracking_uri, family=info.name.split(".", 1)[0]) as own:
            return integration_gate(
                registry, info, golden, k=k, latency_budget_ms=latency_budget_ms,
                vocabulary=vocabulary, server=own,
            )  # fmt: skip
    org = info.name.split(".", 1)[1]
    try:
        pinned = server.pin(info)
    except GateServerError as exc:
        return IntegrationResult(False, 0, 0.0, [f"gate server: {exc}"])
    if not pinned.ok:
        return IntegrationResult(False, 0, 0.0, [f"load: {pinned.error}"], pinned.load_ms)
    try:
        tags = vocabulary or server.vocabulary(org)
        return _ask(server, info, [*golden, *EDGE_CASES], k, latency_budget_ms, tags, pinned)
    except (GateServerError, httpx.HTTPError) as exc:
        return IntegrationResult(False, 0, 0.0, [f"gate server: {exc!r}"[:500]], pinned.load_ms)
    finally:
        server.unpin(org)


def _ask(
    server: GateServer,
    info: VersionInfo,
    requests: Sequence[dict[str, Any]],
    k: int,
    latency_budget_ms: float,
    vocabulary: TagVocabulary,
    pinned: Pinned,
) -> IntegrationResult:
    org = info.name.split(".", 1)[1]
    reasons: list[str] = []
    latencies: list[float] = []
    for number, body in enumerate(requests):
        try:
            status, payload, elapsed = server.suggest(org, {**body, "k": k})
        except httpx.TransportError as exc:  # the process died on this input
            reasons.append(f"request {number}: no answer ({type(exc).__name__})")
            break
        latencies.append(elapsed)
        problem = _check(status, payload, info, k, vocabulary)
        if problem:
            reasons.append(f"request {number}: {problem}")
    # The first answer of a freshly loaded model pays one-time costs (lazy imports,
    # first-call caches), as a production server does before its readiness probe
    # passes: it is checked like every answer, but the budget is about the others.
    first = latencies[0] if latencies else 0.0
    timed = latencies[1:] or latencies
    latency_p95, too_slow = latency_verdict(timed, latency_budget_ms)
    if too_slow:
        reasons.append(too_slow)
    return IntegrationResult(
        not reasons, len(latencies), latency_p95, reasons[:MAX_REASONS], pinned.load_ms,
        first_ms=first, timed=len(timed),
    )  # fmt: skip


def _check(
    status: int, body: Any, info: VersionInfo, k: int, vocabulary: TagVocabulary
) -> str | None:
    if status != 200:
        return f"HTTP {status}: {str(body)[:200]}"
    if not isinstance(body, dict):
        return f"not a JSON object: {str(body)[:200]}"
    if body.get("model") != info.name or body.get("model_version") != info.version:
        return (
            f"served {body.get('model')} v{body.get('model_version')} "
            f"instead of {info.name} v{info.version}"
        )
    suggestions = body.get("suggestions")
    if not isinstance(suggestions, list) or len(suggestions) > k:
        return f"suggestions: expected a list of at most {k}, got {str(suggestions)[:200]}"
    for item in suggestions:
        if not isinstance(item, dict) or not item.get("tag"):
            return f"malformed suggestion {str(item)[:200]}"
        score = item.get("score")
        if not isinstance(score, int | float) or not 0.0 <= score <= 1.0:
            return f"malformed suggestion {item}"
        if item.get("source") not in ("model", "recent"):
            return f"unknown source {item.get('source')!r}"
        problem = vocabulary.problem(str(item["tag"]), str(item["source"]))
        if problem:
            return problem
    if len({item["tag"] for item in suggestions}) != len(suggestions):
        return "duplicate tags in one answer"
    return None


def _tail(path: Path, limit: int = 600) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return "(no log)"
    return " | ".join(text[-limit:].splitlines()) or "(empty log)"

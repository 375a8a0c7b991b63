"""Per-org model cache that follows the registry's ``production`` alias.

A background thread polls the registry every few seconds. A changed alias (a
promotion or a rollback) is loaded *beside* the serving model and swapped in with
one reference assignment, so requests already running finish on the model they
started with and no request ever sees a half-loaded model.

A failed load leaves the previous model serving, is recorded as a reload event
(``events`` and ``on_reload``, which the metrics count) and raises an alert
(:func:`socialsuggest.alerts.record_alert`) once per version. The version is not
retried on every poll: a broken artifact stays broken, and reloading it every two
seconds would burn the CPU the serving model needs, so retries back off per version
(``retry_seconds``, doubling up to ``max_retry_seconds``); a transient failure (the
artifact store briefly down) still heals on its own.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from socialsuggest.alerts import record_alert
from socialsuggest.registry import PRODUCTION, Registry, VersionInfo

log = logging.getLogger(__name__)
Alert = Callable[[str, dict[str, Any]], object]
#: The ``kind`` of the alert raised when a promoted version does not load.
RELOAD_FAILED = "model_reload_failed"


def for_serving(python_model: Any) -> Any:
    """A loaded model in its serving form (a tag model's vocabularies hashed: a third of
    the memory per org). Served models are never pickled again, so it is safe here."""
    compact = getattr(python_model, "compact", None)
    if callable(compact):
        compact()
    return python_model


@dataclass(frozen=True)
class LoadedModel:
    org: str
    name: str
    version: int
    model: Any  # the pyfunc python model (TagSuggesterModel)
    loaded_at: float


@dataclass(frozen=True)
class ReloadEvent:
    name: str
    from_version: int | None
    to_version: int | None
    ok: bool
    error: str | None
    at: float


@dataclass(frozen=True)
class LoadFailure:
    """A version the alias points at that did not load, and when to try it again."""

    name: str
    version: int
    attempts: int
    error: str
    retry_at: float


class ModelCache:
    def __init__(
        self,
        registry: Registry,
        *,
        family: str = "tags",
        alias: str = PRODUCTION,
        poll_seconds: float = 2.0,
        on_reload: Callable[[ReloadEvent], None] | None = None,
        retry_seconds: float = 30.0,
        max_retry_seconds: float = 900.0,
        alert: Alert | None = record_alert,
    ) -> None:
        self.registry = registry
        self.family = family
        self.alias = alias
        self.poll_seconds = poll_seconds
        self.on_reload = on_reload
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.alert = alert
        self._models: dict[str, LoadedModel] = {}
        self._failures: dict[str, LoadFailure] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_refresh_ok: float | None = None
        self.events: list[ReloadEvent] = []

    def get(self, org: str) -> LoadedModel | None:
        return self._models.get(org)

    def loaded(self) -> dict[str, int]:
        return {org: m.version for org, m in self._models.items()}

    def failures(self) -> dict[str, dict[str, Any]]:
        """Per org, the aliased version that does not load (the previous one serves)."""
        with self._lock:
            failing = dict(self._failures)
        now = time.time()
        return {
            org: {
                "version": f.version,
                "attempts": f.attempts,
                "error": f.error.split(":", 1)[0],  # the type: details are in the alert
                "retry_in_s": round(max(0.0, f.retry_at - now), 1),
            }
            for org, f in failing.items()
        }

    def refresh(self) -> list[ReloadEvent]:
        """Bring every org's model in line with its alias; return what changed."""
        events = []
        # one paged search gives every model's aliases; a version is fetched only for
        # an alias that moved (polling N orgs no longer costs N registry calls)
        for name, aliases in sorted(self.registry.aliases(self.family).items()):
            org = name.split(".", 1)[1]
            wanted = aliases.get(self.alias)
            current = self._models.get(org)
            if wanted is not None and current is not None and current.version == wanted:
                self._forget_failure(org)  # e.g. rolled back to the version still serving
                continue
            failed = self._failures.get(org)
            if failed and failed.version == wanted and time.time() < failed.retry_at:
                continue  # this version failed recently: not on every poll
            info = self.registry.version(name, wanted) if wanted is not None else None
            if info is None:
                self._forget_failure(org)
                if current is not None:  # alias removed: stop serving that org's model
                    with self._lock:
                        self._models.pop(org, None)
                    events.append(ReloadEvent(name, current.version, None, True, None, time.time()))
                continue
            event = self._load(org, info, current)
            if event.ok:
                self._forget_failure(org)
            else:
                self._failed(org, info, event, failed)
            events.append(event)
        self.last_refresh_ok = time.time()
        if any(e.ok and e.to_version is not None for e in events):
            _settle()
        for event in events:
            self.events.append(event)
            if self.on_reload:
                self.on_reload(event)
        return events

    def load(self, info: VersionInfo) -> ReloadEvent:
        """Load one given version (the integration gate pins candidates this way).

        No backoff and no alert: the caller asked for this version and judges the
        outcome itself.
        """
        org = info.name.split(".", 1)[1]
        event = self._load(org, info, self._models.get(org))
        self.last_refresh_ok = time.time()
        if event.ok:
            _settle()
        return event

    def unload(self, org: str) -> bool:
        """Stop serving ``org`` (the integration gate frees a checked candidate)."""
        with self._lock:
            return self._models.pop(org, None) is not None

    def _load(self, org: str, info: VersionInfo, current: LoadedModel | None) -> ReloadEvent:
        """Load the version the alias pointed at when we looked (no second lookup)."""
        name = info.name
        before = current.version if current else None
        try:
            python_model = for_serving(self.registry.load_version(info))
        except Exception as exc:  # keep serving the previous model, report the failure
            log.warning("load of %s version %s failed: %s", name, info.version, type(exc).__name__)
            return ReloadEvent(
                name, before, before, False, f"{type(exc).__name__}: {exc}", time.time()
            )
        with self._lock:
            self._models[org] = LoadedModel(org, name, info.version, python_model, time.time())
        log.info("serving %s version %s (was %s)", name, info.version, before)
        return ReloadEvent(name, before, info.version, True, None, time.time())

    def _failed(
        self, org: str, info: VersionInfo, event: ReloadEvent, previous: LoadFailure | None
    ) -> None:
        """Schedule the next try of a version that did not load; alert on the first."""
        attempts = previous.attempts + 1 if previous and previous.version == info.version else 1
        delay = min(self.retry_seconds * 2 ** (attempts - 1), self.max_retry_seconds)
        error = (event.error or "unknown")[:300]
        with self._lock:
            self._failures[org] = LoadFailure(
                info.name, info.version, attempts, error, time.time() + delay
            )
        log.warning(
            "%s version %s did not load (attempt %d); version %s keeps serving; next try in %.0fs",
            info.name, info.version, attempts, event.from_version, delay,
        )  # fmt: skip
        if attempts == 1 and self.alert is not None:
            try:
                self.alert(
                    RELOAD_FAILED,
                    {
                        "model": info.name,
                        "version": info.version,
                        "alias": self.alias,
                        "serving_version": event.from_version,
                        "error_type": error.split(":", 1)[0],
                        "error": error,
                        "retry_in_s": delay,
                    },
                )
            except Exception as exc:  # an alert must never stop the cache from serving
                log.warning("alert not recorded: %s", type(exc).__name__)

    def _forget_failure(self, org: str) -> None:
        if org in self._failures:
            with self._lock:
                self._failures.pop(org, None)

    # ---- background polling -------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="model-cache", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception as exc:  # registry briefly unreachable: keep serving
                log.warning("registry poll failed: %s", type(exc).__name__)


def _settle() -> None:
    """Move what is alive now (the loaded models) out of the garbage collector's reach.

    Models live until the next promotion, yet every full collection walked their
    objects (vocabularies, tag reports: hundreds of thousands for 100 orgs) while
    requests waited. ``gc.freeze`` skips them. The collection first frees the garbage
    cycles loading left behind, so freezing does not keep them; a model replaced later
    is still freed by reference counting (a loaded model holds no reference cycle: a
    test drops one and finds nothing for the collector).
    """
    gc.collect()
    gc.freeze()

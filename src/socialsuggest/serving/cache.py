"""Per-org model cache that follows the registry's ``production`` alias.

A background thread polls the registry every few seconds. A changed alias (a
promotion or a rollback) is loaded *beside* the serving model and swapped in with
one reference assignment, so requests already running finish on the model they
started with and no request ever sees a half-loaded model. A failed load leaves
the previous model serving and is recorded as a reload event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from socialsuggest.registry import PRODUCTION, Registry, VersionInfo

log = logging.getLogger(__name__)


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


class ModelCache:
    def __init__(
        self,
        registry: Registry,
        *,
        family: str = "tags",
        alias: str = PRODUCTION,
        poll_seconds: float = 2.0,
        on_reload: Callable[[ReloadEvent], None] | None = None,
    ) -> None:
        self.registry = registry
        self.family = family
        self.alias = alias
        self.poll_seconds = poll_seconds
        self.on_reload = on_reload
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_refresh_ok: float | None = None
        self.events: list[ReloadEvent] = []

    def get(self, org: str) -> LoadedModel | None:
        return self._models.get(org)

    def loaded(self) -> dict[str, int]:
        return {org: m.version for org, m in self._models.items()}

    def refresh(self) -> list[ReloadEvent]:
        """Bring every org's model in line with its alias; return what changed."""
        events = []
        names = self.registry.models(self.family)
        for name in names:
            org = name.split(".", 1)[1]
            info = self.registry.version_by_alias(name, self.alias)
            current = self._models.get(org)
            if info is None:
                if current is not None:  # alias removed: stop serving that org's model
                    with self._lock:
                        self._models.pop(org, None)
                    events.append(ReloadEvent(name, current.version, None, True, None, time.time()))
                continue
            if current is not None and current.version == info.version:
                continue
            events.append(self._load(org, info, current))
        self.last_refresh_ok = time.time()
        for event in events:
            self.events.append(event)
            if self.on_reload:
                self.on_reload(event)
        return events

    def load(self, info: VersionInfo) -> ReloadEvent:
        """Load one given version (the integration gate boots a candidate this way)."""
        org = info.name.split(".", 1)[1]
        event = self._load(org, info, self._models.get(org))
        self.last_refresh_ok = time.time()
        return event

    def _load(self, org: str, info: VersionInfo, current: LoadedModel | None) -> ReloadEvent:
        """Load the version the alias pointed at when we looked (no second lookup)."""
        name = info.name
        before = current.version if current else None
        try:
            python_model = self.registry.load_version(info)
        except Exception as exc:  # keep serving the previous model, report the failure
            log.warning("reload of %s failed: %s", name, type(exc).__name__)
            return ReloadEvent(
                name, before, before, False, f"{type(exc).__name__}: {exc}", time.time()
            )
        with self._lock:
            self._models[org] = LoadedModel(org, name, info.version, python_model, time.time())
        log.info("serving %s version %s (was %s)", name, info.version, before)
        return ReloadEvent(name, before, info.version, True, None, time.time())

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

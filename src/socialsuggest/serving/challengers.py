"""The challengers a serving process holds beside its champions, and their experiments.

Follows the registry like :class:`~socialsuggest.serving.cache.ModelCache` follows
``production``, but reads every registered model's aliases and tags in ONE search per
poll (not one call per org): only orgs with a running experiment cost anything more.
A challenger that fails to load is simply not served (its requests stay on the
champion), and stopping an experiment drops it within one poll.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from socialsuggest.registry import CHALLENGER, Registry
from socialsuggest.serving.cache import LoadedModel, for_serving
from socialsuggest.serving.experiments import EXPERIMENT_TAG, Experiment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Challenge:
    experiment: Experiment
    model: LoadedModel


class Challengers:
    def __init__(self, registry: Registry, *, family: str = "tags", poll_seconds: float = 2.0):
        self.registry = registry
        self.family = family
        self.poll_seconds = poll_seconds
        self._challenges: dict[str, Challenge] = {}
        self._failed: set[tuple[str, int]] = set()  # (name, version) not retried every poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def get(self, org: str) -> Challenge | None:
        return self._challenges.get(org)

    def running(self) -> dict[str, dict[str, object]]:
        return {
            org: {"mode": c.experiment.mode, "challenger_version": c.model.version}
            for org, c in self._challenges.items()
        }

    def refresh(self) -> None:
        """Load new challengers, drop stopped ones (one registry search per call)."""
        found = self.registry.registered(self.family)
        wanted: dict[str, tuple[str, Experiment]] = {}
        for model in found:
            version = (model.aliases or {}).get(CHALLENGER)
            tag = (model.tags or {}).get(EXPERIMENT_TAG)
            if version is None or not tag:
                continue
            try:
                experiment = Experiment.from_tag(tag)
            except (ValueError, TypeError) as exc:
                log.warning("experiment tag of %s unreadable: %s", model.name, type(exc).__name__)
                continue
            wanted[model.name.split(".", 1)[1]] = (model.name, experiment)
        challenges: dict[str, Challenge] = {}
        for org, (name, experiment) in wanted.items():
            current = self._challenges.get(org)
            version = experiment.challenger_version
            if current is not None and current.model.version == version:
                challenges[org] = Challenge(experiment, current.model)
                continue
            if (name, version) in self._failed:
                continue
            try:
                info = self.registry.version(name, version)
                model = for_serving(self.registry.load_version(info))
            except Exception as exc:  # not served; the champion answers everyone
                self._failed.add((name, version))
                log.warning("challenger %s v%s failed to load: %s", name, version,
                            type(exc).__name__)  # fmt: skip
                continue
            challenges[org] = Challenge(
                experiment, LoadedModel(org, name, version, model, time.time())
            )
            log.info("experiment on %s: %s with challenger v%s", name, experiment.mode, version)
        self._challenges = challenges  # one assignment: requests see old or new, never half

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="challengers", daemon=True)
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
            except Exception as exc:  # registry briefly unreachable: keep what we have
                log.warning("challenger poll failed: %s", type(exc).__name__)

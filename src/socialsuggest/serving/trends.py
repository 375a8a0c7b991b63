"""Where ``GET /v1/trends`` reads the newest trend lists, written by the trends job.

A lake object, not a model: the lists change every window, the detector (the model,
``trends.global`` in the registry) only when its config or code does.
"""

from __future__ import annotations

import json
import time
from typing import Any

from socialsuggest.lake import Lake

RESULTS_KEY = "_state/trends/latest.json"


class TrendsFeed:
    """The newest lists, re-read from the lake at most every ``ttl`` seconds."""

    def __init__(self, lake: Lake, ttl: float = 5.0) -> None:
        self.lake, self.ttl = lake, ttl
        self._doc: dict[str, Any] | None = None
        self._read_at = 0.0

    def latest(self) -> dict[str, Any] | None:
        if self._doc is None or time.monotonic() - self._read_at > self.ttl:
            if self.lake.storage.exists(RESULTS_KEY):
                self._doc = json.loads(self.lake.storage.get(RESULTS_KEY))
            self._read_at = time.monotonic()
        return self._doc

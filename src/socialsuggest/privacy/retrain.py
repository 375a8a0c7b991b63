"""Orgs whose models must be retrained because their training data lost a subject.

A deletion request cannot rely on the registry being reachable at that moment, so
the obligation is written to the lake first (``_state/privacy/retrain.json``: org →
request ids, no personal data) and the daily cycle reads it: it retrains those orgs
even if their data did not otherwise change, lets the new model replace production
without the regression comparison (the old one must go), and clears the entry once
a model trained after the request is registered: by then every earlier version
carries the registry's erased-data flag, which keeps a production left in place
stale (retrained daily) and never reused. An org with no production whose new
candidate the gates rejected then waits for new data like any rejected org, rather
than refitting the same data every morning.
"""

from __future__ import annotations

import json

from socialsuggest.lake import Lake

KEY = "_state/privacy/retrain.json"


class RetrainQueue:
    def __init__(self, lake: Lake) -> None:
        self.storage = lake.storage

    def pending(self) -> dict[str, list[str]]:
        if not self.storage.exists(KEY):
            return {}
        data: dict[str, list[str]] = json.loads(self.storage.get(KEY))
        return data

    def add(self, orgs: list[str], request_id: str) -> None:
        queue = self.pending()
        for org in orgs:
            ids = queue.setdefault(org, [])
            if request_id not in ids:
                ids.append(request_id)
        self._save(queue)

    def clear(self, orgs: list[str]) -> None:
        queue = self.pending()
        if any(org in queue for org in orgs):
            self._save({org: ids for org, ids in queue.items() if org not in orgs})

    def _save(self, queue: dict[str, list[str]]) -> None:
        self.storage.put(KEY, json.dumps(queue, sort_keys=True, indent=1).encode())

"""Erased subjects, so a replayed source cannot bring them back.

Ingest is idempotent by what the lake holds; once a deletion request has removed a
person's rows, re-ingesting an old export or a backfill would write them again. The
tombstones (``_state/privacy/erased.json``: keyed subject hash → when the request
started, no ids) let ingest drop such events: an event about an erased subject that
happened *before* the request is suppressed (counted, never written, never
quarantined: quarantine would store it again). Events after the request are new
data and are kept; a later request erases them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from socialsuggest.lake import Lake
from socialsuggest.privacy.keys import subject_hash

KEY = "_state/privacy/erased.json"
_CHECK = "socialsuggest-privacy-key-check"


class PrivacyKeyMismatchError(ValueError):
    """The configured key is not the one erasures were recorded with."""


class Tombstones:
    def __init__(self, lake: Lake, key: bytes) -> None:
        self.storage = lake.storage
        self.key = key
        self._check = subject_hash(_CHECK, key)
        self._erased: dict[str, datetime] | None = None
        self._cache: dict[str, str] = {}

    def _load(self) -> dict[str, datetime]:
        if self._erased is None:
            data = json.loads(self.storage.get(KEY)) if self.storage.exists(KEY) else {}
            if data and data.get("key_check") != self._check:
                raise PrivacyKeyMismatchError(
                    "privacy_key: differs from the key erasures were recorded with; "
                    "erased subjects could not be recognised (restore SOCIALSUGGEST_PRIVACY_KEY)"
                )
            self._erased = {
                h: datetime.fromisoformat(at) for h, at in data.get("subjects", {}).items()
            }
        return self._erased

    def add(self, hashed: str, requested_at: str) -> None:
        erased = self._load()
        erased[hashed] = datetime.fromisoformat(requested_at)
        payload = {
            "key_check": self._check,
            "subjects": {h: at.isoformat() for h, at in sorted(erased.items())},
        }
        self.storage.put(KEY, json.dumps(payload, indent=1).encode())

    def __len__(self) -> int:
        return len(self._load())

    def hit(self, subject_ids: Iterable[str], at: datetime | None) -> bool:
        """True if one of these subjects was erased by a request made after ``at``
        (``at`` None: an event whose time is unknown counts as before)."""
        erased = self._load()
        if not erased:
            return False
        for subject in subject_ids:
            hashed = self._cache.get(subject)
            if hashed is None:
                if len(self._cache) > 1_000_000:
                    self._cache.clear()
                hashed = self._cache[subject] = subject_hash(subject, self.key)
            requested = erased.get(hashed)
            if requested is not None and (at is None or at <= requested):
                return True
        return False

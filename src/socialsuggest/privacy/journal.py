"""Privacy requests as journals: the crash-safe state *and* the audit record.

One JSON document per request in the lake (``audit/privacy/requests/<id>.json``),
replaced atomically after every step. Because the plan and each object's progress
are written *before* the step they describe is taken, a request killed at any
point is resumed by reading its journal: nothing is redone that was done, nothing
is skipped that was not. The finished document is the audit record: request id,
keyed hash of the subject (never the id), reason, every object touched with rows
removed, start/finish times and the verification result.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from socialsuggest.lake import Lake

PREFIX = "audit/privacy/requests"
HASH_IN_ID = 12  # characters of the subject hash a request id ends with


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class ObjectStep:
    """One lake object of a request and how far its rewrite got."""

    path: str
    zone: str
    dataset: str
    org: str
    dt: str
    rows_before: int
    sha256_before: str
    state: str = "pending"  # pending → rewritten | deleted | unchanged | gone
    rows_removed: int = 0
    values_redacted: int | None = 0  # None: rewritten before a crash, count not recorded
    rows_after: int | None = None
    sha256_after: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("rewritten", "deleted", "unchanged", "gone")


@dataclass
class Journal:
    request_id: str
    kind: str  # "erasure" | "retention"
    reason: str
    subject_hash: str | None = None
    criteria: dict[str, Any] = field(default_factory=dict)
    status: str = "planned"  # planned → rewriting → flagging → verifying → done
    started_at: str = field(default_factory=now)
    finished_at: str | None = None
    attempts: int = 1
    objects: list[ObjectStep] = field(default_factory=list)
    orgs_retrain: list[str] = field(default_factory=list)
    models_flagged: list[str] = field(default_factory=list)
    models_note: str = ""
    verification: dict[str, Any] = field(default_factory=dict)
    verifications: list[dict[str, Any]] = field(default_factory=list)  # later `verify` runs
    errors: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.status == "done"

    @property
    def rows_removed(self) -> int:
        return sum(step.rows_removed for step in self.objects)

    def add(self, steps: list[ObjectStep]) -> int:
        known = {step.path for step in self.objects}
        fresh = [step for step in steps if step.path not in known]
        self.objects.extend(fresh)
        return len(fresh)

    def counts(self) -> dict[str, int]:
        states: dict[str, int] = {}
        for step in self.objects:
            states[step.state] = states.get(step.state, 0) + 1
        return states

    def summary(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "kind": self.kind,
            "status": self.status,
            "subject_hash": self.subject_hash,
            "objects": len(self.objects),
            "objects_by_state": self.counts(),
            "rows_removed": self.rows_removed,
            "values_redacted": sum(step.values_redacted or 0 for step in self.objects),
            "orgs_retrain": self.orgs_retrain,
            "models_flagged": len(self.models_flagged),
            "verification_passed": self.verification.get("passed"),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "attempts": self.attempts,
        }

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Journal:
        raw = json.loads(data)
        raw["objects"] = [ObjectStep(**step) for step in raw.get("objects", [])]
        return cls(**raw)


class JournalStore:
    """Journals in the lake's audit zone (same storage, same atomic writes)."""

    def __init__(self, lake: Lake) -> None:
        self.storage = lake.storage

    def key(self, request_id: str) -> str:
        return f"{PREFIX}/{request_id}.json"

    def save(self, journal: Journal) -> None:
        self.storage.put(self.key(journal.request_id), journal.to_json())

    def load(self, request_id: str) -> Journal | None:
        key = self.key(request_id)
        if not self.storage.exists(key):
            return None
        return Journal.from_json(self.storage.get(key))

    def all(self, kind: str | None = None, id_contains: str = "") -> list[Journal]:
        """Every journal, oldest first (ids start with a UTC timestamp)."""
        found = [
            Journal.from_json(self.storage.get(info.key))
            for info in self.storage.iter_objects(PREFIX + "/")
            if info.key.endswith(".json") and id_contains in info.key.rsplit("/", 1)[-1]
        ]
        found = [j for j in found if kind is None or j.kind == kind]
        return sorted(found, key=lambda j: (j.started_at, j.request_id))

    def for_subject(self, subject_hash: str) -> list[Journal]:
        # request ids end with a prefix of the hash: only those journals are read
        candidates = self.all("erasure", id_contains=subject_hash[:HASH_IN_ID])
        return [j for j in candidates if j.subject_hash == subject_hash]

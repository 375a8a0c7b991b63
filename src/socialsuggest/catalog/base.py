"""The GDPR catalog: one metadata document per lake object, searchable by subject.

Why a catalog at all: a deletion request must find every file that holds a person
without scanning the lake, so its cost grows with that person's data, not with the
lake. The catalog is *derived* state: the lake's outbox feeds it (:mod:`.sync`) and a
reconcile rebuilds what an outbox lost, so it can always be recomputed from the lake.

Backends (embedded SQLite, Elasticsearch) implement :class:`Catalog`; the same
contract test suite runs against both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from socialsuggest.lake import LakeObject

DEFAULT_INDEX = "lake-objects"


class CatalogUnavailableError(RuntimeError):
    """The catalog backend cannot be reached (after retries)."""


@dataclass(frozen=True)
class Query:
    """What to look for; every given criterion must hold (AND)."""

    subject_id: str | None = None
    zones: tuple[str, ...] | None = None
    orgs: tuple[str, ...] | None = None
    dt_before: date | None = None  # dt < this day
    retention_before: date | None = None  # retention_until < this day

    def matches(self, obj: LakeObject) -> bool:
        """Reference semantics, used by tests to check a backend's answer."""
        return (
            (self.subject_id is None or self.subject_id in obj.subject_ids)
            and (self.zones is None or obj.zone in self.zones)
            and (self.orgs is None or obj.org in self.orgs)
            and (self.dt_before is None or obj.dt < self.dt_before.isoformat())
            and (
                self.retention_before is None
                or (
                    obj.retention_until is not None
                    and obj.retention_until < self.retention_before.isoformat()
                )
            )
        )


def to_doc(obj: LakeObject) -> dict[str, Any]:
    return asdict(obj)


def from_doc(doc: dict[str, Any]) -> LakeObject:
    fields = set(LakeObject.__dataclass_fields__)
    values = {k: v for k, v in doc.items() if k in fields}
    values.setdefault("subject_ids", [])  # left out of searches that do not need them
    return LakeObject(**values)


class Catalog(ABC):
    """Metadata of lake objects. Writes are idempotent: the path is the identity."""

    kind: str = "abstract"

    @abstractmethod
    def ensure(self) -> None:
        """Create tables / index templates if missing (safe to call on every start)."""

    @abstractmethod
    def upsert(self, objects: Sequence[LakeObject]) -> int:
        """Insert or replace documents by path, in bulk; returns how many."""

    @abstractmethod
    def remove(self, paths: Sequence[str]) -> int:
        """Delete documents by path (missing ones are ignored); returns how many asked."""

    @abstractmethod
    def get(self, path: str) -> LakeObject | None: ...

    @abstractmethod
    def search(self, query: Query, *, subjects: bool = True) -> Iterator[LakeObject]:
        """Every document matching the query (all of them: paged internally).

        ``subjects=False`` leaves ``subject_ids`` empty: a message file lists thousands
        of subjects, and a deletion request only needs to know where to look.
        """

    @abstractmethod
    def count(self, query: Query | None = None) -> int: ...

    def find_subject(self, subject_id: str, zones: Iterable[str] | None = None) -> list[LakeObject]:
        zone_filter = tuple(zones) if zones is not None else None
        return sorted(
            self.search(Query(subject_id=subject_id, zones=zone_filter)), key=lambda o: o.path
        )

    def locate(self, subject_id: str, zones: Iterable[str] | None = None) -> list[LakeObject]:
        """Like :meth:`find_subject` without the subject lists (what a request needs)."""
        zone_filter = tuple(zones) if zones is not None else None
        found = self.search(Query(subject_id=subject_id, zones=zone_filter), subjects=False)
        return sorted(found, key=lambda o: o.path)

    def iter_all(self) -> Iterator[LakeObject]:
        return self.search(Query())

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The catalog on Elasticsearch, for the services profile.

One document per lake object, ``_id`` = sha1 of its path (paths can be longer than the
512 bytes an ``_id`` may hold). The mapping comes from a composable index template
that :meth:`ElasticCatalog.ensure` installs before creating the index, so an index
recreated by hand (or by a restore) gets the same strict mapping: keywords for
everything a deletion request filters on, dates for the day and retention fields,
and ``extra`` stored but not indexed.

Writes go through the bulk helper with ``refresh="wait_for"``: a deletion request
that syncs the outbox and then searches must see what it just indexed. Searches page
with a point in time + ``search_after`` so they return every match, not the first
10,000. Subject ids never appear in log lines or in the errors raised here (the bulk
helper's own errors carry the documents, so they are replaced, not chained).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import replace
from typing import Any, NoReturn

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import ApiError, Elasticsearch, helpers
from elasticsearch.helpers import BulkIndexError

from socialsuggest.catalog.base import (
    DEFAULT_INDEX,
    Catalog,
    CatalogUnavailableError,
    Query,
    from_doc,
    to_doc,
)
from socialsuggest.lake import LakeObject

log = logging.getLogger(__name__)

#: Statuses worth retrying: overloaded (429) or a proxy / node not ready (502-504).
RETRY_STATUSES = (429, 502, 503, 504)
_UNREACHABLE = (TransportConnectionError, ConnectionTimeout)
_KEEP_ALIVE = "2m"

MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "path": {"type": "keyword"},
        "zone": {"type": "keyword"},
        "dataset": {"type": "keyword"},
        "org": {"type": "keyword"},
        "dt": {"type": "date", "format": "strict_date"},
        "subject_ids": {"type": "keyword"},
        "rows": {"type": "long"},
        "bytes": {"type": "long"},
        "sha256": {"type": "keyword"},
        "created_at": {"type": "date", "format": "strict_date_optional_time"},
        "retention_until": {"type": "date", "format": "strict_date"},
        "state": {"type": "keyword"},
        "extra": {"type": "object", "enabled": False},
    },
}


class CatalogWriteError(RuntimeError):
    """Elasticsearch refused some documents (the message names paths, never subjects)."""


def doc_id(path: str) -> str:
    return hashlib.sha1(path.encode()).hexdigest()


def template_name(index: str) -> str:
    """The composable index template that gives ``<index>*`` its mapping."""
    return f"socialsuggest-{index}"


class ElasticCatalog(Catalog):
    kind = "elasticsearch"

    def __init__(
        self,
        url: str,
        index: str = DEFAULT_INDEX,
        *,
        timeout: float = 30,
        max_retries: int = 5,
        startup_wait: float = 30,
        backoff: float = 0.5,
        page_size: int = 5000,
        chunk_size: int = 5000,
    ) -> None:
        """Connect, waiting up to ``startup_wait`` s (exponential ``backoff``), then ensure.

        ``timeout`` is the per-request timeout; ``max_retries`` the client's retries of a
        request that timed out, failed to connect or got one of :data:`RETRY_STATUSES`.
        """
        self.url = url
        self.shown_url = re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)  # for messages
        self.index = index
        self.max_retries = max_retries
        self.page_size = page_size
        self.chunk_size = chunk_size
        self._client = Elasticsearch(
            url,
            request_timeout=timeout,
            max_retries=max_retries,
            retry_on_timeout=True,
            retry_on_status=RETRY_STATUSES,
        )
        try:
            self._wait_until_up(startup_wait, backoff, timeout)
            self.ensure()
        except BaseException:
            self._client.close()
            raise

    # ---- schema ----------------------------------------------------------------------
    def ensure(self) -> None:
        try:
            self._client.indices.put_index_template(
                name=template_name(self.index),
                index_patterns=[f"{self.index}*"],
                # Templates of equal priority may not overlap: a longer index name (a
                # more specific pattern) wins over a shorter one, e.g. `lake-objects*`.
                priority=100 + len(self.index),
                template={
                    "settings": {"number_of_shards": 1, "number_of_replicas": 0},
                    "mappings": MAPPINGS,
                },
                meta={"owner": "socialsuggest.catalog", "description": "GDPR catalog"},
            )
            if not self._client.indices.exists(index=self.index):
                try:
                    self._client.indices.create(index=self.index)
                except ApiError as error:
                    if error.error != "resource_already_exists_exception":
                        raise  # (another process created it meanwhile: that is fine)
        except _UNREACHABLE as error:
            self._unavailable(error)

    # ---- writes ----------------------------------------------------------------------
    def upsert(self, objects: Sequence[LakeObject]) -> int:
        if not objects:
            return 0
        latest = {o.path: o for o in objects}  # the last record of a path wins, as in SQL
        actions = (
            {
                "_op_type": "index",
                "_index": self.index,
                "_id": doc_id(path),
                "_source": _source(obj),
            }
            for path, obj in latest.items()
        )
        self._bulk(actions)
        return len(objects)

    def remove(self, paths: Sequence[str]) -> int:
        if not paths:
            return 0
        actions = (
            {"_op_type": "delete", "_index": self.index, "_id": doc_id(path)}
            for path in dict.fromkeys(paths)
        )
        self._bulk(actions)
        return len(paths)

    # ---- reads -----------------------------------------------------------------------
    def get(self, path: str) -> LakeObject | None:
        try:
            found = self._client.options(ignore_status=404).get(index=self.index, id=doc_id(path))
        except _UNREACHABLE as error:
            self._unavailable(error)
        if not found.body.get("found"):
            return None
        return _object(found.body["_source"])

    def search(self, query: Query, *, subjects: bool = True) -> Iterator[LakeObject]:
        """Every match, sorted by path: a point in time paged with ``search_after``."""
        return self._scan(_query(query), subjects=subjects)

    def count(self, query: Query | None = None) -> int:
        try:
            found = self._client.count(index=self.index, query=_query(query or Query()))
        except _UNREACHABLE as error:
            self._unavailable(error)
        return int(found["count"])

    def close(self) -> None:
        self._client.close()

    # ---- internals -------------------------------------------------------------------
    def _wait_until_up(self, budget: float, backoff: float, timeout: float) -> None:
        deadline = time.monotonic() + budget
        delay, attempt = backoff, 0
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            try:  # 200 once a master is elected; 503 while the node is still starting
                self._client.options(
                    max_retries=0, request_timeout=max(1.0, min(timeout, remaining))
                ).cluster.health()
                return
            except (*_UNREACHABLE, ApiError) as error:
                if isinstance(error, ApiError) and error.status_code not in RETRY_STATUSES:
                    raise
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CatalogUnavailableError(
                        f"catalog: Elasticsearch at {self.shown_url} is not reachable after "
                        f"{attempt} attempts in {budget:g} s ({type(error).__name__}: "
                        f"{_reason(error)}); start it (make services-up) or check "
                        "SOCIALSUGGEST_CATALOG_URL"
                    ) from error
                pause = min(delay, remaining)
                log.warning(
                    "catalog: Elasticsearch at %s not ready (%s), retrying in %.1f s",
                    self.shown_url,
                    type(error).__name__,
                    pause,
                )
                time.sleep(pause)
                delay *= 2

    def _unavailable(self, error: Exception) -> NoReturn:
        raise CatalogUnavailableError(
            f"catalog: Elasticsearch at {self.shown_url} failed after {self.max_retries} retries "
            f"({type(error).__name__}: {_reason(error)})"
        ) from error

    def _bulk(self, actions: Iterable[dict[str, Any]]) -> None:
        failed: list[str] = []
        try:
            helpers.bulk(
                self._client,
                actions,
                chunk_size=self.chunk_size,
                max_retries=self.max_retries,  # item-level 429s, with exponential backoff
                ignore_status=(404,),  # deleting what is not there is not an error
                refresh="wait_for",  # read-your-writes for the deletion request that follows
            )
        except BulkIndexError as error:
            # its .errors carry the documents (subject ids): keep only ids and reasons
            for item in error.errors:
                for op, detail in item.items():
                    reason = detail.get("error", {})
                    kind = reason.get("type", "?") if isinstance(reason, dict) else "?"
                    data = detail.get("data")
                    where = data.get("path") if isinstance(data, dict) else None
                    failed.append(f"{op} {where or detail.get('_id', '?')}: {kind}")
        except _UNREACHABLE as error:
            self._unavailable(error)
        if failed:
            raise CatalogWriteError(
                f"catalog: Elasticsearch at {self.shown_url} index {self.index!r} refused "
                f"{len(failed)} document(s): {'; '.join(failed[:5])}"
            )

    def _scan(self, query: dict[str, Any], *, subjects: bool = True) -> Iterator[LakeObject]:
        try:
            pit = self._client.open_point_in_time(index=self.index, keep_alive=_KEEP_ALIVE)["id"]
        except _UNREACHABLE as error:
            self._unavailable(error)
        after: list[Any] | None = None
        try:
            while True:
                page = self._client.search(
                    pit={"id": pit, "keep_alive": _KEEP_ALIVE},
                    query=query,
                    sort=[{"path": "asc"}],
                    size=self.page_size,
                    search_after=after,
                    track_total_hits=False,
                    source_excludes=None if subjects else ["subject_ids"],
                )
                pit = page.body.get("pit_id", pit)
                hits = page["hits"]["hits"]
                for hit in hits:
                    yield _object(hit["_source"])
                if len(hits) < self.page_size:
                    return
                after = hits[-1]["sort"]
        except _UNREACHABLE as error:
            self._unavailable(error)
        finally:
            with suppress(*_UNREACHABLE):  # else it expires after the keep-alive
                self._client.options(ignore_status=404).close_point_in_time(id=pit)


def _source(obj: LakeObject) -> dict[str, Any]:
    doc: dict[str, Any] = to_doc(obj)
    doc["subject_ids"] = sorted(set(obj.subject_ids))
    return doc


def _object(source: dict[str, Any]) -> LakeObject:
    return replace(
        from_doc(source),
        subject_ids=sorted(source.get("subject_ids") or []),
        extra=dict(source.get("extra") or {}),
    )


def _query(query: Query) -> dict[str, Any]:
    clauses: list[dict[str, Any]] = []
    if query.subject_id is not None:
        clauses.append({"term": {"subject_ids": query.subject_id}})
    if query.zones is not None:
        clauses.append({"terms": {"zone": list(query.zones)}})
    if query.orgs is not None:
        clauses.append({"terms": {"org": list(query.orgs)}})
    if query.dt_before is not None:
        clauses.append({"range": {"dt": {"lt": query.dt_before.isoformat()}}})
    if query.retention_before is not None:
        clauses.append({"range": {"retention_until": {"lt": query.retention_before.isoformat()}}})
    if not clauses:
        return {"match_all": {}}
    return {"bool": {"filter": clauses}}


def _reason(error: Exception) -> str:
    """An error's message, shortened (transport errors can be long)."""
    text = str(error) or repr(error)
    return text if len(text) <= 200 else text[:200] + "…"

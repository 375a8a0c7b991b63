"""GDPR metadata catalog: embedded (SQLite) or Elasticsearch, behind one interface."""

from __future__ import annotations

from socialsuggest.catalog.base import (
    DEFAULT_INDEX,
    Catalog,
    CatalogUnavailableError,
    Query,
)
from socialsuggest.catalog.sync import ReconcileReport, SyncReport, reconcile, sync_outbox
from socialsuggest.config import Settings


def open_catalog(settings: Settings) -> Catalog:
    """The backend ``SOCIALSUGGEST_CATALOG_URL`` names: empty = SQLite under home."""
    url = settings.catalog_url
    if not url or url.startswith("sqlite:"):
        from socialsuggest.catalog.sqlite import SqliteCatalog

        path = url.split("sqlite:", 1)[1].lstrip("/") if url else ""
        target = ("/" + path) if url.startswith("sqlite:///") and path else path
        return SqliteCatalog(target or settings.home / "catalog.sqlite")
    if url.startswith(("http://", "https://")):
        from socialsuggest.catalog.elastic import ElasticCatalog

        return ElasticCatalog(url, index=settings.catalog_index)
    raise ValueError(
        f"catalog_url: unsupported {url!r} (empty for embedded SQLite, sqlite:///path, "
        "or http(s)://host:9200 for Elasticsearch)"
    )


__all__ = [
    "DEFAULT_INDEX",
    "Catalog",
    "CatalogUnavailableError",
    "Query",
    "ReconcileReport",
    "SyncReport",
    "open_catalog",
    "reconcile",
    "sync_outbox",
]

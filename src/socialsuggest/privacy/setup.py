"""Build a :class:`Privacy` from settings, the same way for CLI, DAGs and tests."""

from __future__ import annotations

from socialsuggest.catalog import open_catalog
from socialsuggest.config import Settings
from socialsuggest.lake import Lake
from socialsuggest.privacy.engine import ModelFlagger, Privacy, Progress
from socialsuggest.privacy.keys import privacy_key
from socialsuggest.privacy.tombstones import KEY as TOMBSTONES_KEY
from socialsuggest.privacy.tombstones import Tombstones


def registry_flagger(tracking_uri: str) -> ModelFlagger:
    """Flag every family's versions of the orgs, created before the request started."""

    def flag(orgs: list[str], request_id: str, before: str) -> list[str]:
        from socialsuggest.registry import Registry

        return Registry(tracking_uri).mark_trained_on_erased_data(orgs, request_id, before)

    return flag


def open_privacy(
    settings: Settings, *, tracking_uri: str | None = None, progress: Progress | None = None
) -> Privacy:
    """``tracking_uri`` None = do not touch the registry (the retrain queue still holds)."""
    return Privacy(
        lake=Lake.from_settings(settings),
        catalog=open_catalog(settings),
        key=privacy_key(settings),
        flag_models=registry_flagger(tracking_uri) if tracking_uri else None,
        progress=progress,
    )


def erased_subjects(settings: Settings, lake: Lake) -> Tombstones | None:
    """The ingest filter for erased subjects; None while no request ever ran (then no
    key is needed, so plain ingest works without one)."""
    if not lake.storage.exists(TOMBSTONES_KEY):
        return None
    return Tombstones(lake, privacy_key(settings))


def reachable_tracking_uri(settings: Settings, *, timeout: float = 3.0) -> str | None:
    """The registry to flag models in, if it answers now; else None (the retrain
    queue still holds the obligation and the next cycle flags them)."""
    import urllib.error
    import urllib.request

    uri = settings.resolved_tracking_uri
    if not uri.startswith("http"):
        return uri
    try:
        urllib.request.urlopen(f"{uri}/health", timeout=timeout).close()
    except (urllib.error.URLError, OSError):
        return None
    return uri

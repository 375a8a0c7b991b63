"""``socialsuggest privacy …`` and ``socialsuggest catalog …``: GDPR operations.

Output is JSON on stdout (an operator pastes it into the ticket that asked for the
erasure), progress lines on stderr. Subject ids never appear in either beyond the
argument the operator typed: the audit shows a keyed hash.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from socialsuggest.cli.output import console, out
from socialsuggest.cli.output import fail as _fail
from socialsuggest.config import Settings, load_settings

privacy_app = typer.Typer(
    help="GDPR: deletion requests, verification, retention purge, export, audit.",
    no_args_is_help=True,
)
catalog_app = typer.Typer(help="The GDPR metadata catalog of the lake.", no_args_is_help=True)
_DAYS = re.compile(r"^(\d+)d?$")

Subject = Annotated[str, typer.Option("--subject", help="the data subject's id (e.g. author id)")]


def _say(message: str) -> None:
    console.print(f"[dim]{message}[/]", soft_wrap=True)


def _tracking_uri(settings: Settings) -> str | None:
    from socialsuggest.privacy import reachable_tracking_uri

    uri = reachable_tracking_uri(settings)
    if uri is None:
        _say("registry not reachable: models are queued for retrain only")
    return uri


def _print(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


def _privacy(*, registry: bool = False) -> Any:
    from socialsuggest.catalog import CatalogUnavailableError
    from socialsuggest.privacy import open_privacy

    settings = load_settings()
    try:
        return open_privacy(
            settings,
            tracking_uri=_tracking_uri(settings) if registry else None,
            progress=_say,
        )
    except CatalogUnavailableError as exc:
        raise _fail(str(exc), code=1) from None
    except ValueError as exc:
        raise _fail(str(exc)) from None


@privacy_app.command("forget")
def forget(
    subject: Subject,
    reason: Annotated[str, typer.Option(help="why (ticket id, legal basis)")] = "",
) -> None:
    """Erase a subject from raw, processed, quarantine and serving logs; audit it.

    Re-running an interrupted request resumes it; re-running a finished one is a
    no-op that says so.
    """
    from socialsuggest.privacy import PrivacyError

    privacy = _privacy(registry=True)
    try:
        outcome = privacy.forget(subject, reason=reason)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    except PrivacyError as exc:
        raise _fail(str(exc), code=1) from None
    _print(outcome.summary())


@privacy_app.command("verify")
def verify(
    subject: Subject,
    full: Annotated[bool, typer.Option("--full", help="scan the whole lake")] = False,
) -> None:
    """Prove no row of the subject remains (exit 1 if any does)."""
    privacy = _privacy()
    try:
        result = privacy.verify(subject, full=full)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    _print(result)
    if not result["passed"]:
        raise typer.Exit(1)


@privacy_app.command("purge")
def purge(
    older_than: Annotated[
        str | None, typer.Option(help="e.g. 180d (default: SOCIALSUGGEST_RETENTION_DAYS)")
    ] = None,
) -> None:
    """Delete personal-data objects older than the retention window."""
    settings = load_settings()
    days = settings.retention_days
    if older_than is not None:
        match = _DAYS.match(older_than.strip())
        if not match or int(match[1]) < 1:
            raise _fail(f"older-than: {older_than!r} is not a number of days like 180d")
        days = int(match[1])
    privacy = _privacy()
    _print(privacy.purge(older_than_days=days).summary())


@privacy_app.command("export")
def export(
    subject: Subject,
    out_file: Annotated[Path | None, typer.Option("--out", help="JSON file to write")] = None,
) -> None:
    """Right of access: every record held about the subject, in one JSON file."""
    privacy = _privacy()
    target = out_file or Path(f"export-{privacy_hash(privacy, subject)[:12]}.json")
    try:
        _print(privacy.export(subject, target))
    except ValueError as exc:
        raise _fail(str(exc)) from None


def privacy_hash(privacy: Any, subject: str) -> str:
    from socialsuggest.privacy import subject_hash

    return subject_hash(subject, privacy.key)


@privacy_app.command("requests")
def requests() -> None:
    """The audit trail: every erasure and retention request, oldest first."""
    privacy = _privacy()
    _print([journal.summary() for journal in privacy.requests()])


@catalog_app.command("sync")
def catalog_sync() -> None:
    """Index pending lake writes (the outbox) into the catalog."""
    from socialsuggest.catalog import sync_outbox

    privacy = _privacy()
    _print(sync_outbox(privacy.lake, privacy.catalog, progress=_say).summary())


@catalog_app.command("reconcile")
def catalog_reconcile(
    check: Annotated[bool, typer.Option("--check", help="report only, repair nothing")] = False,
) -> None:
    """Compare the lake listing with the catalog and repair differences."""
    from socialsuggest.catalog import reconcile

    privacy = _privacy()
    report = reconcile(privacy.lake, privacy.catalog, repair=not check, progress=_say)
    _print({**report.summary(), "in_sync": report.in_sync})
    if check and not report.in_sync:
        raise typer.Exit(1)


@catalog_app.command("status")
def catalog_status() -> None:
    """Which backend, how many documents, how many outbox files wait."""
    privacy = _privacy()
    catalog = privacy.catalog
    _print(
        {
            "backend": catalog.kind,
            "documents": catalog.count(),
            "outbox_files_pending": len(privacy.lake.outbox_files()),
            "retrain_queue": privacy.retrain.pending(),
        }
    )

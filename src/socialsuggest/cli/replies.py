"""``socialsuggest replies review-export|review-import``: the bootstrap's human round trip.

Before an org records "saved reply chosen" events, its reply ranker learns from
clustered outgoing replies. Replies whose similarity to a template is in the middle
band (70-90 fuzz) are neither labelled nor dropped: ``review-export`` writes them to
a CSV for a person, who fills ``label`` with the template id (or ``none``);
``review-import`` reads it back, refuses bad rows with the line and the reason, and
keeps the accepted labels (ids only) for the next retrain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from socialsuggest.cli.output import console
from socialsuggest.cli.output import fail as _fail
from socialsuggest.config import load_settings

replies_app = typer.Typer(
    help="Suggested replies: review the labels bootstrapped from outgoing replies.",
    no_args_is_help=True,
)


@replies_app.command("review-export")
def review_export(
    org: Annotated[str, typer.Option("--org", help="the org whose replies to review")],
    out: Annotated[Path, typer.Option("--out", help="CSV to write (holds reply text)")],
) -> None:
    """Write the org's middle-band replies (neither auto-labelled nor dropped) as CSV."""
    from socialsuggest.lake import Lake
    from socialsuggest.models.replies import bootstrap_labels, export_review
    from socialsuggest.pipeline.replies_cycle import org_inputs

    lake = Lake.from_settings(load_settings())
    _, _, sent = org_inputs(lake, org)
    if sent.empty:
        raise _fail(f"org: {org!r} has no outgoing replies in the lake")
    sent = sent.reset_index(drop=True)
    texts = sent["text"].astype(str).tolist()
    result = bootstrap_labels(texts)
    out.write_text(export_review(result, texts, sent["reply_message_id"].tolist()))
    console.print(f"{len(result.review)} replies to review -> {out} ({result.summary()})")


@replies_app.command("review-import")
def review_import(
    org: Annotated[str, typer.Option("--org", help="the org the CSV was exported for")],
    path: Annotated[Path, typer.Argument(help="the reviewed CSV")],
) -> None:
    """Keep the labels a person gave; every refused row is listed with its reason."""
    from socialsuggest.lake import Lake
    from socialsuggest.models.replies import bootstrap_labels, import_review
    from socialsuggest.pipeline.replies_cycle import org_inputs, save_reviewed_labels

    lake = Lake.from_settings(load_settings())
    _, _, sent = org_inputs(lake, org)
    templates = {
        t.template_id for t in bootstrap_labels(sent["text"].astype(str).tolist()).templates
    }
    try:
        labels, errors = import_review(path.read_text(encoding="utf-8"), templates)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    for error in errors:
        console.print(f"[yellow]refused[/] {error}")
    total = save_reviewed_labels(lake, org, labels)
    console.print(f"{len(labels)} labels imported ({len(errors)} refused); {total} kept for {org}")
    if errors:
        raise typer.Exit(1)

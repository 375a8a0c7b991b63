"""``socialsuggest acceptance report``: the daily acceptance of served suggestions.

The same function the ``serving_acceptance_daily`` DAG runs, for an operator who
wants a day's numbers (or to re-run a day) by hand. Exit 1 when an org with enough
suggestions is below the floor, so a cron job or CI step fails on it too.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from socialsuggest.cli.output import console, out
from socialsuggest.cli.output import fail as _fail
from socialsuggest.config import load_settings

acceptance_app = typer.Typer(
    help="Acceptance of served suggestions (accepted / shown), from the lake's serving logs.",
    no_args_is_help=True,
)


def _day(value: str | None) -> date:
    if value is None:  # the last complete day
        return datetime.now(UTC).date() - timedelta(days=1)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _fail(f"--day: {value!r} is not a date (YYYY-MM-DD)") from None


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@acceptance_app.command("report")
def report(
    day: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD (default: yesterday, UTC)", show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Acceptance per org, model version and source for one day; log it to MLflow and
    the lake (audit/acceptance/). Exits 1 if an org is below the acceptance floor."""
    from socialsuggest.pipeline.acceptance import AcceptanceBelowFloor, daily_acceptance_report

    settings = load_settings()
    wanted = _day(day)
    failure: AcceptanceBelowFloor | None = None
    try:
        outcome = daily_acceptance_report(settings, wanted, run="cli")
    except AcceptanceBelowFloor as exc:
        failure, outcome = exc, exc.outcome
    if as_json:
        out.print_json(json.dumps(outcome.summary(), default=str))
    else:
        table = Table(title=f"acceptance {outcome.day.isoformat()}")
        for column in ("org", "version", "source", "shown", "accepted", "rate", "95% CI"):
            table.add_column(column, justify="left" if column in ("org", "source") else "right")
        for row in outcome.report.rows:
            interval = row.tally.interval
            table.add_row(
                row.org,
                str(row.model_version),
                row.source,
                str(row.tally.shown),
                str(row.tally.accepted),
                _rate(row.tally.rate),
                f"{interval[0]:.3f}-{interval[1]:.3f}" if interval else "-",
            )
        out.print(table)
        total = outcome.report.total()
        out.print(
            f"{len(outcome.report.orgs())} orgs, {total.shown} shown, {total.accepted} accepted, "
            f"rate {_rate(total.rate)}; floor {outcome.floor:.2f} for orgs with at least "
            f"{outcome.min_shown} shown; report: {outcome.report_path}"
        )
    if not outcome.mlflow_run:
        console.print("[yellow]not logged to MLflow[/] (see the warning above)")
    if failure is not None:
        raise _fail(str(failure), code=1)

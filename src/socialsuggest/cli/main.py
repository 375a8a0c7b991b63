"""``socialsuggest``: one sub-command per operation, thin over the stage packages.

Exit codes: 0 success, 1 the operation failed, 2 bad usage or bad input (Typer's
convention for usage errors, reused for invalid arguments we detect ourselves).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from socialsuggest.config import load_settings
from socialsuggest.ingest import ingest_paths, source_files
from socialsuggest.lake import Lake
from socialsuggest.pipeline import CycleSummary, run_cycle
from socialsuggest.sampledata import generate as generate_sample

app = typer.Typer(
    name="socialsuggest",
    help="Suggested tags, hashtags and replies per org: data, models, serving, GDPR.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
lake_app = typer.Typer(help="Inspect the data lake.", no_args_is_help=True)
app.add_typer(lake_app, name="lake")
console = Console(stderr=True)
out = Console()


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def _progress() -> Iterator[Progress]:
    with Progress(
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        yield bar


@app.command("config")
def show_config() -> None:
    """Print the effective settings (env SOCIALSUGGEST_*, optional file, defaults)."""
    out.print_json(json.dumps(load_settings().describe()))


@app.command()
def generate(
    out_dir: Annotated[Path, typer.Option("--out", help="folder to write JSONL files to")],
    orgs: Annotated[int, typer.Option(min=1, help="number of customer orgs")] = 8,
    messages: Annotated[int, typer.Option(min=1, help="messages across all orgs")] = 20_000,
    days: Annotated[int, typer.Option(min=1, help="days of history")] = 30,
    end: Annotated[str | None, typer.Option(help="last day (exclusive), YYYY-MM-DD")] = None,
    seed: Annotated[int, typer.Option(help="same seed + arguments = same files")] = 42,
    invalid_rate: Annotated[float, typer.Option(help="share of corrupted records")] = 0.002,
) -> None:
    """Generate deterministic sample events drawn from the real corpora."""
    settings = load_settings()
    try:
        end_day = date.fromisoformat(end) if end else None
    except ValueError:
        raise _fail(f"--end: {end!r} is not a date (YYYY-MM-DD)") from None
    try:
        datasets = settings.resolved_datasets_dir
        with _progress() as bar:
            task = bar.add_task("generate", total=messages)
            manifest = generate_sample(
                out_dir,
                datasets_dir=datasets,
                orgs=orgs,
                messages=messages,
                days=days,
                end=end_day,
                seed=seed,
                invalid_rate=invalid_rate,
                progress=lambda n: bar.advance(task, n),
            )
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    table = Table(title=f"sample data in {out_dir}")
    columns = ("org", "corpus", "messages", "vocabulary", "new_tags", "archived_tags")
    for column in columns:
        table.add_column(column)
    for org in manifest.orgs:
        table.add_row(*(str(org[c]) for c in columns))
    out.print(table)
    out.print(f"counts: {manifest.counts}; deliberately invalid: {manifest.invalid_injected}")


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="JSONL/CSV/Parquet files or folders")],
    event_type: Annotated[
        str | None, typer.Option(help="type for records that do not name one")
    ] = None,
) -> None:
    """Ingest event files into the raw lake; bad records go to quarantine with reasons."""
    settings = load_settings()
    lake = Lake.from_settings(settings)
    try:
        files = source_files(paths)  # bad paths fail before any work starts
        with _progress() as bar:
            task = bar.add_task("ingest", total=None)
            report = ingest_paths(
                lake,
                files,
                flush_rows=settings.ingest_flush_rows,
                default_type=event_type,
                progress=lambda n: bar.advance(task, n),
            )
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    out.print_json(json.dumps({"lake_root": lake.root, **report.summary()}))


@lake_app.command("ls")
def lake_ls(
    zone: Annotated[str, typer.Argument(help="raw, processed, quarantine or audit")] = "raw",
    dataset: Annotated[str | None, typer.Option(help="only this dataset")] = None,
    files: Annotated[bool, typer.Option("--files", help="list every file")] = False,
) -> None:
    """Show datasets of a lake zone: files, rows, bytes, orgs, days."""
    lake = Lake.from_settings(load_settings())
    try:
        if files:
            for part in lake.files(zone, dataset):
                out.print(f"{part.size:>10}  {part.key}")
            return
        stats = lake.stats(zone, dataset)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    table = Table(title=f"{zone} zone of {lake.root}")
    for column in ("dataset", "files", "rows", "bytes", "orgs", "from", "to"):
        table.add_column(column, justify="left" if column == "dataset" else "right")
    for s in stats:
        table.add_row(
            s.dataset, str(s.files), str(s.rows), str(s.bytes), str(s.orgs), s.dt_min, s.dt_max
        )
    out.print(table)


@app.command()
def run(
    once: Annotated[bool, typer.Option("--once", help="run one cycle and exit")] = False,
    orgs: Annotated[int, typer.Option(min=1, help="orgs in the sample data")] = 8,
    messages: Annotated[int, typer.Option(min=1, help="sample messages")] = 20_000,
    days: Annotated[int, typer.Option(min=1, help="days of sample history")] = 30,
    seed: Annotated[int, typer.Option(help="sample data seed")] = 42,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Run one daily cycle on the configured lake (sample data → ingest → summary)."""
    settings = load_settings()
    tasks: dict[str, TaskID] = {}
    try:
        with _progress() as bar:

            def step(name: str, advance: int, total: int | None) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=total)
                bar.advance(tasks[name], advance)

            summary = run_cycle(
                settings, orgs=orgs, messages=messages, days=days, seed=seed, progress=step
            )
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        out.print_json(json.dumps(summary.as_dict()))
    else:
        _print_summary(summary)
    _ = once  # serving after the cycle arrives with the serving stage; today run is one-shot


def _print_summary(summary: CycleSummary) -> None:
    data: dict[str, Any] = summary.as_dict()
    ingest = data["ingest"]
    table = Table(title="daily cycle", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("orgs in lake", data["lake"]["orgs"]),
        ("messages in lake", summary.rows("raw", "messages")),
        ("distinct tags applied", _distinct_tags(summary)),
        ("tag lifecycle events", summary.rows("raw", "tag_events")),
        ("saved replies chosen", summary.rows("raw", "reply_choices")),
        ("posts", summary.rows("raw", "posts")),
        ("quarantined records (total)", sum(s.rows for s in summary.quarantine)),
        ("this run: records read", ingest["records_in"]),
        ("this run: written", sum(ingest["written"].values())),
        ("this run: quarantined", sum(ingest["quarantined"].values())),
        ("this run: duplicates skipped", ingest["duplicates_skipped"]),
        ("sample data", summary.sample_dir),
        ("lake", summary.lake_root),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    out.print(table)


def _distinct_tags(summary: CycleSummary) -> int:
    lake_tags = summary.extra.get("distinct_tags")
    return int(lake_tags) if lake_tags is not None else len(summary.ingest.tags)


def main() -> None:  # console-script entry point
    app()

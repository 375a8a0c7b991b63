"""``socialsuggest``: one sub-command per operation, thin over the stage packages.

Exit codes: 0 success, 1 the operation failed, 2 bad usage or bad input (Typer's
convention for usage errors, reused for invalid arguments we detect ourselves).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
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

from socialsuggest.cli.acceptance import acceptance_app
from socialsuggest.cli.experiments import experiments_app
from socialsuggest.cli.keys import curl_auth, keys_app, sample_key, serving_keys
from socialsuggest.cli.output import console, out
from socialsuggest.cli.output import fail as _fail
from socialsuggest.cli.privacy import catalog_app, privacy_app
from socialsuggest.cli.replies import replies_app
from socialsuggest.cli.stack import stack_app
from socialsuggest.config import Settings, load_settings
from socialsuggest.ingest import ingest_paths, source_files
from socialsuggest.lake import Lake
from socialsuggest.privacy import erased_subjects
from socialsuggest.sampledata import generate as generate_sample

if TYPE_CHECKING:  # heavy (Spark, MLflow, sklearn): imported by the commands that use them
    from socialsuggest.pipeline import CycleSummary
    from socialsuggest.pipeline.publishing import OrgOutcome
    from socialsuggest.registry import MlflowServer, Registry


class RetrainChoice(StrEnum):
    changed = "changed"
    all = "all"


class EngineChoice(StrEnum):
    local = "local"
    spark = "spark"


app = typer.Typer(
    name="socialsuggest",
    help="Suggested tags, hashtags and replies per org: data, models, serving, GDPR.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
lake_app = typer.Typer(help="Inspect the data lake.", no_args_is_help=True)
app.add_typer(lake_app, name="lake")


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
                erased=erased_subjects(settings, lake),
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
    engine: Annotated[
        EngineChoice, typer.Option(help="training fan-out: local pool or spark")
    ] = EngineChoice.local,
    dry_run: Annotated[bool, typer.Option(help="train and gate, promote nothing")] = False,
    ingest_only: Annotated[bool, typer.Option(help="stop after ingest (no models)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Run one daily cycle: sample data, ingest, preprocess, train, gate, register, serve."""
    from socialsuggest.pipeline import run_cycle
    from socialsuggest.registry import Registry

    settings = load_settings()
    tasks: dict[str, TaskID] = {}
    uri, server = (None, None) if ingest_only else _tracking(settings, start=True)
    try:
        with _progress() as bar:

            def step(name: str, advance: int, total: int | None) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=total)
                bar.advance(tasks[name], advance)

            summary = run_cycle(
                settings,
                orgs=orgs,
                messages=messages,
                days=days,
                seed=seed,
                registry=Registry(uri) if uri else None,
                engine=engine.value,
                dry_run=dry_run,
                progress=step,
                say=lambda line: bar.console.print(f"[dim]{line}[/]", soft_wrap=True),
            )
        if as_json:
            out.print_json(json.dumps(summary.as_dict(), default=str))
        else:
            _print_summary(summary)
        if summary.tags and not any(o.trained for o in summary.tags.orgs):
            raise _fail("no org could be trained (see the per-org errors above)", code=1)
        if once or uri is None:
            return
        _serve_forever(settings, Registry(uri), uri)
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from None
    finally:
        if server is not None:
            server.stop()


def _tracking(settings: Settings, *, start: bool) -> tuple[str, MlflowServer | None]:
    """MLFLOW_TRACKING_URI if set; else the local server (started here when asked)."""
    if settings.mlflow_tracking_uri:
        _check_reachable(settings.mlflow_tracking_uri)
        return settings.mlflow_tracking_uri, None
    home: Path = settings.home / "mlflow"
    if start:
        from socialsuggest.registry.server import ensure_server

        console.print(f"[dim]mlflow: starting a tracking server on :{settings.mlflow_port}[/]")
        started: tuple[str, MlflowServer | None] = ensure_server(
            home,
            port=settings.mlflow_port,
            backend_store_uri=settings.mlflow_backend_uri or None,
            artifacts_destination=settings.mlflow_artifacts or None,
            s3_endpoint_url=settings.s3_endpoint_url or None,
        )
        return started
    return settings.resolved_tracking_uri, None


def _serve_forever(settings: Settings, registry: Registry, uri: str) -> None:
    import uvicorn

    from socialsuggest.serving.app import app_from_settings

    api = f"http://{settings.api_host}:{settings.api_port}"
    console.print(
        f"\n[bold]serving[/] suggestions on {api}  (docs: {api}/docs)\n"
        f"[bold]MLflow UI[/] on {uri}\n"
        "try:\n"
        f"  curl -s -X POST {api}/v1/orgs/acme/tags:suggest -H 'content-type: application/json' "
        f"{curl_auth(sample_key(settings))} "
        """-d '{"text": "how long should I rest bread dough before baking?"}'\n"""
        "Ctrl-C stops both.",
        soft_wrap=True,  # keep the curl line copy-pasteable
    )
    serving_keys(settings)  # a usage error for a bad admin key, a hint when there is none
    uvicorn.run(
        app_from_settings(settings, registry),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
    )


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="port (default: settings api_port)")] = None,
    host: Annotated[str | None, typer.Option(help="interface to bind")] = None,
) -> None:
    """Serve the suggestion API from the registry's production versions (hot reload).

    Org routes need that org's API key (`socialsuggest keys create --org ORG`) or the
    admin key (SOCIALSUGGEST_ADMIN_KEY).
    """
    import uvicorn

    from socialsuggest.serving.app import app_from_settings

    settings = load_settings()
    _tracking(settings, start=False)  # fail here, with a message, when it is unreachable
    serving_keys(settings)  # a usage error for a bad admin key, a hint when there is none
    uvicorn.run(
        app_from_settings(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level="info",
        # no access log: it names client addresses (personal data stays out of process
        # logs) and costs a tenth of a suggestion; the lake's request log and /metrics
        # record every request instead
        access_log=False,
    )


def _print_summary(summary: CycleSummary) -> None:
    data: dict[str, Any] = summary.as_dict()
    ingest = data["ingest"]
    table = Table(title="daily cycle: data", show_header=False)
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
    if summary.tags:
        pre = summary.tags.preprocess
        rows.append(
            ("preprocess partitions (done/unchanged)",
             f"{pre['partitions_processed']}/{pre['partitions_skipped']}")
        )  # fmt: skip
    for name, value in rows:
        table.add_row(name, str(value))
    out.print(table)
    if summary.tags:
        tags = summary.tags
        _print_outcomes(_TAGS, tags.orgs, f"{tags.engine} fan-out, {tags.seconds}s")
    if summary.hashtags:
        _print_outcomes(_HASHTAGS, summary.hashtags.orgs, f"{summary.hashtags.seconds}s")
    if summary.replies:
        _print_outcomes(_REPLIES, summary.replies.orgs, f"{summary.replies.seconds}s")
    if summary.trends:
        detector = summary.trends.detector
        state = (
            "reused"
            if detector and detector.reused
            else ("promoted" if detector and detector.promoted else "not promoted")
        )
        out.print(
            f"trends: detector trends.global v{summary.trends.model_version} ({state}); "
            f"{summary.trends.posts} posts read; listed per segment {summary.trends.segments}"
        )


Cell = Callable[["OrgOutcome"], str]


def _metric(name: str) -> Cell:
    """A metric to 3 decimals; NaN where the org's run did not report it."""
    return lambda o: f"{o.metrics.get(name, float('nan')):.3f}"


def _not_trained(o: OrgOutcome) -> str:
    first = (o.error or "").splitlines()[0] if o.error else ""
    return f"[yellow]not trained: {first}[/]"


@dataclass(frozen=True)
class _Family:
    """What one family's outcome table shows between ``org`` and ``version``, and how it
    words an org that was not trained or only accepted: the rest is every family's."""

    title: str
    cells: tuple[tuple[str, Cell], ...]
    untrained: Cell = _not_trained
    accepted: str = "accepted (dry run)"
    #: How a re-run that reused a version reads (None: by its gate result, as tags do).
    reused: str | None = "reused"

    def outcome(self, o: OrgOutcome) -> str:
        if o.promoted:
            return f"[green]production (was {o.production_before or 'none'})[/]"
        if o.reused and self.reused is not None:
            return self.reused
        if o.gate_passed:
            return self.accepted
        return "[red]rejected: " + "; ".join(o.gate_reasons) + "[/]"


_TAGS = _Family(
    "tag models",
    (
        ("tags on/off", lambda o: f"{o.enabled_tags}/{o.disabled_tags}"),
        ("P@1", _metric("precision@1")),
        ("NDCG@3", _metric("ndcg@3")),
        ("hit@3", _metric("hit_rate@3")),
    ),
    untrained=lambda o: f"[red]training failed: {o.error}[/]",
    accepted="accepted, not promoted (dry run)",
    reused=None,
)
_HASHTAGS = _Family(
    "hashtag models",
    (
        ("hashtags", lambda o: str(o.enabled_tags)),
        ("NDCG@3 hidden", _metric("hidden.hybrid.ndcg_at_3")),
        ("NDCG@3 one given", _metric("one_given.hybrid.ndcg_at_3")),
    ),
)
_REPLIES = _Family(
    "reply rankers",
    (
        ("replies", lambda o: str(o.enabled_tags)),
        ("macro F1", _metric("macro_f1")),
        ("acc@1", _metric("accuracy_at_1")),
        ("hit@3", _metric("hit_rate_at_3")),
    ),
)


def _print_outcomes(family: _Family, orgs: list[OrgOutcome], how: str) -> None:
    """One table of a cycle's org outcomes, the same shape for every family."""
    table = Table(title=f"daily cycle: {family.title} ({how})")
    headers = [name for name, _ in family.cells]
    for column in ("org", *headers, "version", "outcome"):
        table.add_column(column, justify="left" if column in ("org", "outcome") else "right")
    blank = ["-"] * len(headers)
    for o in orgs:
        if o.fresh:  # kept: production is still fresh (the tag family's retrain policy)
            table.add_row(o.org, *blank, str(o.production_after), f"kept: {o.fresh}")
        elif o.waiting:  # no production; its rejected candidate's data barely changed
            table.add_row(o.org, *blank, "-", f"waiting: {o.waiting}")
        elif not o.trained:
            table.add_row(o.org, *blank, "-", family.untrained(o))
        else:
            cells = [cell(o) for _, cell in family.cells]
            table.add_row(o.org, *cells, str(o.version), family.outcome(o))
    out.print(table)


def _distinct_tags(summary: CycleSummary) -> int:
    lake_tags = summary.extra.get("distinct_tags")
    return int(lake_tags) if lake_tags is not None else len(summary.ingest.tags)


models_app = typer.Typer(help="Registered models: list, inspect, promote, roll back.")
app.add_typer(models_app, name="models")
app.add_typer(privacy_app, name="privacy")
app.add_typer(replies_app, name="replies")
app.add_typer(catalog_app, name="catalog")
app.add_typer(stack_app, name="stack")
app.add_typer(acceptance_app, name="acceptance")
app.add_typer(keys_app, name="keys")
app.add_typer(experiments_app, name="experiments")


def _check_reachable(uri: str) -> None:
    """Fail in seconds, not after MLflow's minutes of retries, when the server is down."""
    import urllib.error
    import urllib.request

    if not uri.startswith("http"):
        return
    try:
        urllib.request.urlopen(f"{uri}/health", timeout=5).close()
    except (urllib.error.URLError, OSError):
        raise _fail(
            f"MLflow at {uri} is not reachable: start it with `make run` "
            "or point MLFLOW_TRACKING_URI at a running server",
            code=1,
        ) from None


def _registry() -> Registry:
    from socialsuggest.registry import Registry

    uri, _ = _tracking(load_settings(), start=False)
    _check_reachable(uri)
    return Registry(uri)


@models_app.command("ls")
def models_ls(
    family: Annotated[str | None, typer.Option(help="tags, hashtags, replies, trends")] = None,
) -> None:
    """Registered models with their production / staging versions."""
    from socialsuggest.registry import PRODUCTION, STAGING

    registry = _registry()
    table = Table(title=f"registered models at {registry.tracking_uri}")
    for column in ("model", "production", "staging", "latest", "latest gate"):
        table.add_column(column)
    for name in registry.models(family):
        versions = registry.versions(name)
        latest = versions[-1] if versions else None
        prod, staged = (registry.version_by_alias(name, a) for a in (PRODUCTION, STAGING))
        table.add_row(
            name,
            str(prod.version) if prod else "-",
            str(staged.version) if staged else "-",
            str(latest.version) if latest else "-",
            ("accepted" if latest.accepted else "rejected") if latest else "-",
        )
    out.print(table)


@models_app.command("show")
def models_show(name: Annotated[str, typer.Argument(help="e.g. tags.acme")]) -> None:
    """Versions of one model (gate results, data window, code) and its alias history."""
    registry = _registry()
    versions = registry.versions(name)
    if not versions:
        raise _fail(f"model {name!r} is not registered")
    table = Table(title=name)
    for column in ("version", "aliases", "gate", "data window", "code", "replaces", "created"):
        table.add_column(column)
    for v in versions:
        gate = "accepted" if v.accepted else "rejected: " + v.tags.get("gate.reasons", "")
        start, end = (v.tags.get(f"data_window.{e}", "?")[:10] for e in ("start", "end"))
        table.add_row(
            str(v.version),
            ",".join(v.aliases) or "-",
            gate,
            f"{start}..{end}",
            v.tags.get("code_version", "?"),
            v.tags.get("replaces_production_version", "-"),
            v.created,
        )
    out.print(table)
    history = registry.alias_history(name)
    if history:
        moves = Table(title="alias moves")
        for column in ("at", "alias", "from", "to", "actor", "reason"):
            moves.add_column(column)
        for event in history:
            moves.add_row(
                *(str(event.get(c)) for c in ("at", "alias", "from", "to", "actor", "reason"))
            )
        out.print(moves)


@models_app.command("promote")
def models_promote(
    name: Annotated[str, typer.Argument(help="e.g. tags.acme")],
    version: Annotated[int | None, typer.Option(help="default: the staging version")] = None,
    reason: Annotated[str, typer.Option(help="why (kept in the audit trail)")] = "manual promotion",
    actor: Annotated[
        str | None, typer.Option(help="who (default: $SOCIALSUGGEST_ACTOR/$USER)")
    ] = None,
) -> None:
    """Move `production` to a version (accepted versions only)."""
    from socialsuggest.registry import default_actor

    registry = _registry()
    try:
        info = registry.promote(name, version, actor=actor or default_actor(), reason=reason)
    except Exception as exc:  # RegistryError, or MLflow's (unknown model or version)
        raise _fail(str(exc), code=1) from None
    out.print(f"{name}: production is now version {info.version}")


@models_app.command("rollback")
def models_rollback(
    name: Annotated[str, typer.Argument(help="e.g. tags.acme")],
    to: Annotated[
        int | None, typer.Option("--to", help="default: the version production replaced")
    ] = None,
    reason: Annotated[str, typer.Option(help="why (kept in the audit trail)")] = "manual rollback",
    actor: Annotated[
        str | None, typer.Option(help="who (default: $SOCIALSUGGEST_ACTOR/$USER)")
    ] = None,
) -> None:
    """Move `production` back to the previous accepted version (or --to VERSION)."""
    from socialsuggest.registry import default_actor

    registry = _registry()
    try:
        info = registry.rollback(name, to, actor=actor or default_actor(), reason=reason)
    except Exception as exc:  # RegistryError, or MLflow's (unknown model or version)
        raise _fail(str(exc), code=1) from None
    out.print(f"{name}: production rolled back to version {info.version}")


@app.command()
def preprocess(
    full: Annotated[bool, typer.Option("--full", help="ignore state, recompute all")] = False,
) -> None:
    """Spark preprocessing of the tag family (incremental: only changed partitions)."""
    from socialsuggest.processing.spark import get_spark
    from socialsuggest.processing.tags import preprocess_tags

    settings = load_settings()
    lake = Lake.from_settings(settings)
    report = preprocess_tags(
        lambda: get_spark(settings), lake, settings=settings, full=full, progress=console.print
    )
    out.print_json(json.dumps(report.summary(), default=str))


@app.command()
def train(
    org: Annotated[
        list[str] | None, typer.Option(help="org to train (repeatable; default all)")
    ] = None,
    engine: Annotated[
        EngineChoice, typer.Option(help="training fan-out: local pool or spark")
    ] = EngineChoice.local,
    dry_run: Annotated[bool, typer.Option(help="train and gate, promote nothing")] = False,
    retrain: Annotated[
        RetrainChoice,
        typer.Option(help="all orgs, or only those whose production model is stale"),
    ] = RetrainChoice.all,
) -> None:
    """Preprocess, train, gate, register and promote the tag models (no ingest)."""
    from socialsuggest.pipeline.tags_cycle import run_tags_cycle
    from socialsuggest.registry import Registry
    from socialsuggest.training.policy import RetrainPolicy

    settings = load_settings()
    uri, server = _tracking(settings, start=True)
    try:
        report = run_tags_cycle(
            settings,
            Registry(uri),
            orgs=[o for o in org or [] if o] or None,
            engine=engine.value,
            dry_run=dry_run,
            say=lambda line: console.print(f"[dim]{line}[/]", soft_wrap=True),
            retrain=RetrainPolicy.from_settings(settings, retrain.value),
        )
    finally:
        if server is not None:
            server.stop()
    _print_outcomes(_TAGS, report.orgs, f"{report.engine} fan-out, {report.seconds}s")
    if not any(o.trained or o.fresh or o.waiting for o in report.orgs):
        raise _fail("no org could be trained", code=1)


class FormatChoice(StrEnum):
    fasttext = "fasttext"
    jsonl = "jsonl"
    csv = "csv"


@app.command()
def evaluate(
    train_file: Annotated[Path, typer.Option("--train", help="labelled training file")],
    test_file: Annotated[Path, typer.Option("--test", help="labelled test file")],
    fmt: Annotated[FormatChoice, typer.Option("--format", help="file format")] = (
        FormatChoice.fasttext
    ),
    choose_learner: Annotated[
        bool,
        typer.Option(
            help="pick the SVM or the logistic words learner on the validation split "
            "(as the daily cycle does); --no-choose-learner fits the SVM only"
        ),
    ] = True,
) -> None:
    """Train the tag model on TRAIN, print its metrics on TEST as JSON (like `annif eval`).

    fasttext: `__label__a __label__b text` lines; jsonl: {"text", "tags"[, "network",
    "message_type", "created_at"]}; csv: columns text and tags (JSON list or a|b).
    `learner` says which learner the validation split chose and what each scored.
    """
    from socialsuggest.models.tags import TagModelConfig
    from socialsuggest.training.offline import evaluate_files

    config = TagModelConfig(choose_learner=choose_learner)
    try:
        result = evaluate_files(train_file, test_file, fmt.value, config)
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    out.print_json(json.dumps(result, default=str))


def main() -> None:  # console-script entry point
    """Run the CLI; a backing service that fails is named, with its URL, not a traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        app()
    except (BotoCoreError, ClientError) as exc:
        settings = load_settings()
        where = settings.s3_endpoint_url or "AWS S3"
        console.print(
            f"[bold red]error:[/] S3 store at {where} (lake {settings.lake_root}) failed: {exc}",
            soft_wrap=True,
        )
        raise SystemExit(1) from None

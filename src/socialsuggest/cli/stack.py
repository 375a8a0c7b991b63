"""``socialsuggest stack up|once|down|status``: the local platform ``make run`` starts.

``up`` puts sample data in the lake (the same ingest as ``socialsuggest run``), starts
MLflow, the suggestion API and Airflow, unpauses the DAGs, follows the first daily
retrain task by task and prints where to look; then it stays in the foreground until
Ctrl-C (or SIGTERM), which stops everything it started.
"""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from socialsuggest.cli.keys import curl_auth, sample_key
from socialsuggest.cli.output import console, out
from socialsuggest.cli.output import fail as _fail
from socialsuggest.config import Settings, load_settings

if TYPE_CHECKING:
    from socialsuggest.stack import LocalStack
    from socialsuggest.stack.airflow import RunResult

stack_app = typer.Typer(
    help="The local platform: MLflow, the suggestion API and Airflow (make run).",
    no_args_is_help=True,
)


def _say(line: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {line}", soft_wrap=True)


def _sample(
    settings: Settings, orgs: int, messages: int, days: int, seed: int, *, hold_last_day: bool
) -> list[Path]:
    """Sample data into the raw lake (idempotent: a second `make run` adds nothing).

    With ``hold_last_day`` the newest day is held back and returned: ingested after
    the first retrain, it makes the next run train a second version, as the next
    day would, so ``model_rollback`` has somewhere to go back to.
    """
    from socialsuggest.pipeline import ensure_sample_data

    started = time.monotonic()
    folder = ensure_sample_data(settings, orgs=orgs, messages=messages, days=days, seed=seed)
    files = sorted(p for p in folder.rglob("*.jsonl"))
    last = max((p.stem for p in files if p.parent.name == "messages"), default=None)
    held = [p for p in files if hold_last_day and p.stem == last]
    _ingest(settings, [p for p in files if p not in held], "sample data", started)
    return held


def _ingest(settings: Settings, paths: list[Path], what: str, started: float) -> None:
    from socialsuggest.ingest import ingest_paths
    from socialsuggest.lake import Lake
    from socialsuggest.privacy import erased_subjects

    lake = Lake.from_settings(settings)
    report = ingest_paths(
        lake, paths, flush_rows=settings.ingest_flush_rows, erased=erased_subjects(settings, lake)
    )
    _say(
        f"{what}: {report.written.total()} records written, {report.duplicates} already in "
        f"the lake, {report.quarantined.total()} quarantined ({time.monotonic() - started:.0f} s)"
    )


#: Followed after the tag family's first run. The next day's data is retrained by their
#: schedules, not here: only the tag family's second version is made at once (the
#: rollback target the first minutes need), which keeps `make run` minutes shorter.
FAMILY_DAGS = ("hashtags_daily_retrain", "replies_daily_retrain", "trends_hourly")


def _report_run(result: RunResult) -> int:
    failed = [t.label for t in result.tasks if t.state == "failed"]
    _say(
        f"{result.dag_id}: [bold]{result.state}[/] in {result.seconds:.0f} s"
        + (f" (failed: {', '.join(failed)})" if failed else "")
    )
    return 0 if result.state == "success" else 1


class _Stop(Exception):
    pass


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise _Stop


@stack_app.command("up")
def up(
    orgs: Annotated[int, typer.Option(min=1, help="orgs in the sample data")] = 8,
    messages: Annotated[int, typer.Option(min=1, help="sample messages")] = 20_000,
    days: Annotated[int, typer.Option(min=1, help="days of sample history")] = 30,
    seed: Annotated[int, typer.Option(help="sample data seed")] = 42,
    sample: Annotated[bool, typer.Option(help="ingest sample data first")] = True,
    first_run: Annotated[
        bool, typer.Option(help="follow (or trigger) the first daily retrains: tags, hashtags")
    ] = True,
    timeout: Annotated[int, typer.Option(min=60, help="seconds to wait for that run")] = 3600,
    detach: Annotated[
        bool, typer.Option(help="return once up (and the first run done); `stack down` stops")
    ] = False,
    next_day: Annotated[
        bool,
        typer.Option(
            help="hold the newest sample day back, then ingest it and retrain again: a second "
            "version per org, so model_rollback has a target"
        ),
    ] = True,
) -> None:
    """Start the platform and follow the first daily retrain; Ctrl-C stops it all."""
    from socialsuggest.stack import LocalStack, StackError

    settings = load_settings()
    stack = LocalStack(settings, say=_say)
    signal.signal(signal.SIGTERM, _on_term)
    code = 0
    try:
        held = []
        if sample:
            held = _sample(settings, orgs, messages, days, seed, hold_last_day=next_day)
        stack.up()
        since = datetime.now(UTC)  # every first run is queued after this
        stack.unpause_all()
        if first_run:
            code = _report_run(stack.first_run(timeout=timeout, since=since))
            # the other families' first runs: due too, or (replies) started by the tag
            # run's validated processed messages
            for dag_id in FAMILY_DAGS:
                if code == 0:
                    code = _report_run(stack.first_run(dag_id, timeout=timeout, since=since))
            if held and code == 0:  # the next day arrives: the daily retrains run again
                _ingest(settings, held, "the next day's data", time.monotonic())
                # every org, whatever the retrain policy says: a second version per org
                # gives the rollback DAG a target from the first minutes
                code = _report_run(
                    stack.trigger_and_follow(conf={"retrain": "all"}, timeout=timeout)
                )
        _banner(stack, sample_key(settings))  # a key for acme when it has none yet
        if detach:
            raise typer.Exit(code)
        dead: set[str] = set()
        while True:  # foreground until Ctrl-C / SIGTERM; say when a component dies
            time.sleep(5)
            for name, launched in stack.launched.items():
                if name not in dead and not launched.alive():
                    dead.add(name)
                    _say(f"[red]{name} exited[/] (log: {launched.log})")
    except StackError as exc:
        stack.down()
        raise _fail(str(exc), code=1) from None
    except (KeyboardInterrupt, _Stop):
        _say("stopping")
        stack.down()
    except typer.Exit:
        raise
    except BaseException:
        stack.down()
        raise


def _banner(stack: LocalStack, key: str | None) -> None:
    """Where to look; ``key``: a new acme API key for the curl line (None: it has one)."""
    from socialsuggest.stack.airflow import USER, password

    urls = stack.urls()
    api = urls["api"]
    console.print(
        f"\n[bold]Airflow[/]  {urls['airflow']}  (user [bold]{USER}[/], password "
        f"[bold]{password(stack.settings)}[/])\n"
        f"[bold]MLflow[/]   {urls['mlflow']}\n"
        f"[bold]API[/]      {api}  (docs: {api}/docs)\n"
        "try:\n"
        f"  curl -s -X POST {api}/v1/orgs/acme/tags:suggest -H 'content-type: application/json' "
        f"{curl_auth(key)} "
        """-d '{"text": "how long should I rest bread dough before baking?"}'\n"""
        f"  curl -s -X POST {api}/v1/orgs/acme/hashtags:suggest -H 'content-type: "
        f"application/json' {curl_auth(key)} "
        """-d '{"text": "who takes album of the year tonight?", "hashtags": ["grammys"]}'\n"""
        f"  curl -s -X POST {api}/v1/orgs/acme/replies:rank -H 'content-type: "
        f"application/json' {curl_auth(key)} "
        """-d '{"text": "my parcel never arrived, can you help?"}'\n"""
        "In Airflow: trigger gdpr_forget or model_rollback from their trigger forms.\n"
        f"Logs: {stack.state / 'logs'}.  Ctrl-C (or `make stop`) stops everything.",
        soft_wrap=True,
    )


@stack_app.command("once")
def once(
    orgs: Annotated[int, typer.Option(min=1, help="orgs in the sample data")] = 8,
    messages: Annotated[int, typer.Option(min=1, help="sample messages")] = 20_000,
    days: Annotated[int, typer.Option(min=1, help="days of sample history")] = 30,
    seed: Annotated[int, typer.Option(help="sample data seed")] = 42,
    conf: Annotated[str, typer.Option(help="run conf (JSON) for tags_daily_retrain")] = "{}",
    sample: Annotated[bool, typer.Option(help="ingest sample data first")] = True,
) -> None:
    """Sample data, then `airflow dags test tags_daily_retrain` beside MLflow; its status."""
    from socialsuggest.stack import LocalStack, StackError

    try:
        parsed = json.loads(conf)
    except json.JSONDecodeError as exc:
        raise _fail(f"conf: not valid JSON ({exc})") from None
    settings = load_settings()
    if sample:
        _sample(settings, orgs, messages, days, seed, hold_last_day=False)
    try:
        code = LocalStack(settings, say=_say).once(conf=parsed)
    except StackError as exc:
        raise _fail(str(exc), code=1) from None
    _say("tags_daily_retrain: " + ("[bold]success[/]" if code == 0 else "[red]failed[/]"))
    raise typer.Exit(code)


@stack_app.command("down")
def down() -> None:
    """Stop every process the stack of this home started (by PID file and marker)."""
    from socialsuggest.stack import LocalStack

    LocalStack(load_settings(), say=_say).down()


@stack_app.command("status")
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Each component: PID, alive, processes in its group and their memory (PSS)."""
    from socialsuggest.stack import LocalStack

    rows = LocalStack(load_settings(), say=_say).status()
    if as_json:
        out.print_json(json.dumps([row.__dict__ for row in rows]))
        return
    table = Table("component", "pid", "alive", "processes", "memory (MiB)")
    for row in rows:
        table.add_row(
            row.name, str(row.pid), str(row.alive), str(row.processes), f"{row.memory_mib:.0f}"
        )
    table.add_row("total", "", "", str(sum(r.processes for r in rows)),
                  f"{sum(r.memory_mib for r in rows):.0f}")  # fmt: skip
    out.print(table)

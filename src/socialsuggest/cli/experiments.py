"""``socialsuggest experiments start|stop|status|report``: champion vs challenger.

An experiment is a registry change (the ``challenger`` alias and a tag on the
registered model), so every serving process follows it within its poll interval,
and the alias history records who started or stopped it and why.
"""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer

from socialsuggest.cli.output import fail as _fail
from socialsuggest.cli.output import out

if TYPE_CHECKING:
    from socialsuggest.registry import Registry

experiments_app = typer.Typer(
    help="Experiments without affecting users: shadow or A/B challengers.",
    no_args_is_help=True,
)

Org = Annotated[str, typer.Option("--org", help="the org whose model is challenged")]
Family = Annotated[str, typer.Option(help="model family")]


def _registry_and_name(family: str, org: str) -> tuple[Registry, str]:
    from socialsuggest.cli.main import _registry
    from socialsuggest.registry import model_name

    return _registry(), model_name(family, org)


@experiments_app.command("start")
def start(
    org: Org,
    version: Annotated[int, typer.Option(help="the challenger version (gates passed)")],
    mode: Annotated[str, typer.Option(help="shadow (logged, never shown) or ab")] = "shadow",
    fraction: Annotated[
        float, typer.Option(help="ab: share of users (agent/session) on the challenger")
    ] = 0.1,
    reason: Annotated[str, typer.Option(help="why (kept in the alias history)")] = "experiment",
    actor: Annotated[str | None, typer.Option(help="who (default: $USER)")] = None,
    family: Family = "tags",
) -> None:
    """Serve VERSION as the challenger of the org's production model."""
    from socialsuggest.registry import default_actor

    registry, name = _registry_and_name(family, org)
    try:
        experiment = registry.start_experiment(
            name, version, mode=mode, fraction=fraction, actor=actor or default_actor(),
            reason=reason,
        )  # fmt: skip
    except ValueError as exc:
        raise _fail(str(exc)) from None
    except Exception as exc:  # RegistryError or MLflow's (unknown model/version)
        raise _fail(str(exc), code=1) from None
    out.print_json(json.dumps({"model": name, **experiment.__dict__}))


@experiments_app.command("stop")
def stop(
    org: Org,
    reason: Annotated[str, typer.Option(help="why (kept in the alias history)")] = "stopped",
    actor: Annotated[str | None, typer.Option(help="who (default: $USER)")] = None,
    family: Family = "tags",
) -> None:
    """End the org's experiment: only the champion serves again."""
    from socialsuggest.registry import default_actor

    registry, name = _registry_and_name(family, org)
    try:
        stopped = registry.stop_experiment(name, actor=actor or default_actor(), reason=reason)
    except Exception as exc:
        raise _fail(str(exc), code=1) from None
    out.print_json(json.dumps({"model": name, "stopped": stopped.__dict__ if stopped else None}))


@experiments_app.command("report")
def report(
    org: Org,
    day: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD (default: the whole experiment)")
    ] = None,
    family: Family = "tags",
) -> None:
    """Champion vs challenger acceptance from the lake's request and feedback logs."""
    from socialsuggest.config import load_settings
    from socialsuggest.pipeline.experiments import experiment_report

    registry, name = _registry_and_name(family, org)
    try:
        when = date.fromisoformat(day) if day else None
    except ValueError:
        raise _fail(f"day: {day!r} is not a date (YYYY-MM-DD)") from None
    try:
        result = experiment_report(load_settings(), registry, name, day=when)
    except LookupError as exc:
        raise _fail(str(exc), code=1) from None
    out.print_json(json.dumps(result, default=str))

"""Serving in production: ONE trained registry shared by every serving test.

A real MLflow server, a small sample ingested, preprocessed with Spark and trained
for ``ORGS`` orgs, each with a ``production`` version — built once per test run, then
read (not changed) by the tests. A test that moves aliases registers its own versions
(see ``register_variant``) or uses an org of its own, so tests stay order-independent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from servers import running_app
from socialsuggest.config import Settings, load_settings
from socialsuggest.pipeline import CycleSummary, run_cycle
from socialsuggest.registry import (
    Candidate,
    MlflowServer,
    Registry,
    VersionInfo,
    start_server,
)
from socialsuggest.registry.pyfunc import TagSuggesterModel

ORGS = 3


@pytest.fixture(scope="session")
def serving_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serving")


@pytest.fixture(scope="session")
def serving_mlflow(serving_home: Path) -> Iterator[MlflowServer]:
    server = start_server(serving_home / "mlflow")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def serving_settings(serving_home: Path, serving_mlflow: MlflowServer) -> Settings:
    return load_settings(
        home=serving_home, mlflow_tracking_uri=serving_mlflow.url, spark_master="local[2]"
    )


@pytest.fixture(scope="session")
def serving_registry(serving_mlflow: MlflowServer) -> Registry:
    return Registry(serving_mlflow.url)


@pytest.fixture(scope="session")
def trained(spark: Any, serving_settings: Settings, serving_registry: Registry) -> CycleSummary:
    """Every org trained, gated, registered and promoted once (version 1 in production)."""
    summary = run_cycle(
        serving_settings,
        orgs=ORGS,
        messages=3000,
        days=14,
        seed=11,
        registry=serving_registry,
        families=("tags",),
    )
    assert summary.tags is not None and all(o.promoted for o in summary.tags.orgs), summary.tags
    return summary


@pytest.fixture(scope="session")
def orgs(trained: CycleSummary) -> list[str]:
    """The orgs with a production tags model, sorted."""
    assert trained.tags is not None
    return sorted(o.org for o in trained.tags.orgs)


RegisterVariant = Callable[[VersionInfo, set[str]], VersionInfo]


@pytest.fixture(scope="session")
def register_variant(serving_registry: Registry) -> RegisterVariant:
    """Register a new accepted version: ``base``'s model with ``archive`` tags archived.

    A real variant (its answers differ where an archived tag would have been suggested),
    registered like any candidate, so promotions, experiments and rollbacks can be
    exercised on versions a test owns.
    """
    import pandas as pd

    def register(base: VersionInfo, archive: set[str]) -> VersionInfo:
        tag_model = serving_registry.load_version(base).model.with_archived(archive)
        example = pd.DataFrame(
            [{"text": "how do I knead dough", "network": "twitter", "message_type": "mention"}]
        )
        candidate = Candidate(
            family="tags",
            org=base.name.split(".", 1)[1],
            model=tag_model,
            python_model=TagSuggesterModel(k=tag_model.config.k),
            input_example=example,
            example_output=TagSuggesterModel(tag_model, k=tag_model.config.k).predict(
                None, example
            ),
            metrics={},
            params={"variant_of": base.version, "archived": sorted(archive)},
            data_window=(base.tags["data_window.start"], base.tags["data_window.end"]),
            gate_passed=True,
            gate_reasons=[],
            extra_tags={"test": "variant"},
        )
        return serving_registry.log_candidate(candidate)

    return register


@pytest.fixture
def serve() -> Iterator[Callable[[FastAPI], str]]:
    """Serve an app on a free loopback port in a thread; returns its URL once /healthz
    answers. Every app served is stopped after the test."""
    with ExitStack() as running:
        yield lambda app: running.enter_context(running_app(app, path="/healthz"))

"""Each Registry talks to its own MLflow server and leaves MLflow's process-wide URI alone.

A Registry used to point MLflow's process-wide tracking URI at its server: a registry
built earlier then wrote to whichever server the last one created named, a stopped
one in CI. Here two registries on two real servers are used interleaved while the
process-wide URI names a port where nothing listens.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.pyfunc.model import PythonModel
from mlflow.tracking import MlflowClient

from socialsuggest.registry import (
    Candidate,
    MlflowServer,
    Registry,
    VersionInfo,
    free_port,
    start_server,
)

pytestmark = pytest.mark.slow
FAMILY = "isolation"  # no model family uses it: the shared family server stays theirs


class Labelled(PythonModel):  # type: ignore[misc]
    """The smallest real pyfunc: its pickled model is a label naming where it was logged."""

    def __init__(self) -> None:
        self.model: Any = None

    def load_context(self, context: Any) -> None:
        with open(context.artifacts["model"], "rb") as handle:
            self.model = pickle.load(handle)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return pd.DataFrame({"label": [str(self.model)] * len(model_input)})


@pytest.fixture(scope="module")
def other_mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = start_server(tmp_path_factory.mktemp("other-mlflow"))
    yield server
    server.stop()


@pytest.fixture
def process_uri(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """MLflow's process-wide URI names a dead port (as after a stopped test server)."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", nowhere)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a stray call fails at once
    assert mlflow.get_tracking_uri() == nowhere
    yield nowhere
    assert mlflow.get_tracking_uri() == nowhere


def _log(registry: Registry, org: str, label: str) -> VersionInfo:
    example = pd.DataFrame({"text": ["hello"]})
    candidate = Candidate(
        family=FAMILY,
        org=org,
        model=label,
        python_model=Labelled(),
        input_example=example,
        example_output=pd.DataFrame({"label": [label]}),
        metrics={"score": 1.0},
        params={"label": label},
        data_window=("2026-11-01", "2026-11-02"),
        gate_passed=True,
        gate_reasons=[],
        requirements=("pandas",),
    )
    return registry.log_candidate(candidate)


def _untouched(uri: str) -> None:
    """The process-wide URI and its environment variable are as the test set them."""
    assert mlflow.get_tracking_uri() == uri
    assert os.environ.get("MLFLOW_TRACKING_URI") == uri
    assert "MLFLOW_REGISTRY_URI" not in os.environ


def _names(url: str) -> set[str]:
    found = MlflowClient(tracking_uri=url).search_registered_models(f"name LIKE '{FAMILY}.%'")
    return {m.name for m in found}


def test_two_registries_used_interleaved_each_use_their_own_server(
    family_mlflow: MlflowServer, other_mlflow: MlflowServer, process_uri: str
) -> None:
    one = Registry(family_mlflow.url)
    two = Registry(other_mlflow.url)
    _untouched(process_uri)  # creating a registry changes nothing process-wide

    first = _log(one, "alpha", "one-1")
    _untouched(process_uri)
    second = _log(two, "beta", "two-1")
    third = _log(one, "alpha", "one-2")
    _untouched(process_uri)

    assert (first.version, third.version, second.version) == (1, 2, 1)
    assert _names(family_mlflow.url) == {f"{FAMILY}.alpha"}
    assert _names(other_mlflow.url) == {f"{FAMILY}.beta"}
    assert one.client.get_run(str(first.run_id)).data.params["label"] == "one-1"
    with pytest.raises(MlflowException):
        two.client.get_run(str(first.run_id))  # the run is on the first server only

    assert two.load_version(second).model == "two-1"
    assert one.load_version(first).model == "one-1"
    assert two.load_version(two.version(f"{FAMILY}.beta", 1)).model == "two-1"
    assert one.load_version(third).model == "one-2"
    _untouched(process_uri)


def test_a_registry_keeps_working_after_another_ones_server_stopped(
    family_mlflow: MlflowServer, tmp_path: Path, process_uri: str
) -> None:
    """The CI failure: a registry created elsewhere on a server since stopped."""
    kept = Registry(family_mlflow.url)
    short_lived = start_server(tmp_path / "mlflow")
    try:
        _log(Registry(short_lived.url), "gamma", "short-lived")
    finally:
        short_lived.stop()
    logged = _log(kept, "delta", "kept")
    assert kept.load_version(logged).model == "kept"
    assert kept.version_by_alias(f"{FAMILY}.delta", "production") is None
    _untouched(process_uri)


def test_a_model_is_logged_while_other_threads_read_environment_variables(
    family_mlflow: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CI failure of 2026-12-07. While ``log_model`` checks the input example it can
    swap ``os.environ``'s ``get`` and ``[]`` for ones that collect every name read, by any
    thread, into a set it then iterates: a serving app's refresh thread reading a variable
    for the first time meanwhile raised "Set changed size during iteration" and lost the
    candidate. That crash needs an unlucky switch between threads; what causes it does not.
    So a thread here reads variables without pause, the interpreter switching threads every
    10 µs, while a model is logged: it must be registered and load back, and no read may
    have gone through a swapped ``os.environ`` (with the old behaviour 7,419 of 694,156
    did)."""
    registry = Registry(family_mlflow.url)
    names = [f"SOCIALSUGGEST_TEST_READ_{i}" for i in range(200)]
    for name in names:
        monkeypatch.setenv(name, "1")
    plain = (os._Environ.get, os._Environ.__getitem__)
    stop = threading.Event()
    reads, swapped = [0], [0]

    def reader() -> None:
        while not stop.is_set():
            os.environ.get(names[reads[0] % len(names)])
            os.environ[names[(reads[0] + 1) % len(names)]]
            swapped[0] += (os._Environ.get, os._Environ.__getitem__) != plain
            reads[0] += 1

    interval = sys.getswitchinterval()
    thread = threading.Thread(target=reader, daemon=True)
    sys.setswitchinterval(1e-5)
    thread.start()
    try:
        logged = _log(registry, "epsilon", "read-0")
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)
    assert reads[0] > 1000  # the reader really ran beside the logging
    assert swapped[0] == 0, f"{swapped[0]} of {reads[0]} reads went through a swapped environ"
    assert registry.load_version(logged).model == "read-0"

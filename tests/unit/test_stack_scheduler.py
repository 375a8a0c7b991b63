"""The stack's scheduler entry point (``socialsuggest.stack.scheduler``): what it
preloads must exist, and a module that cannot be imported must not stop the scheduler.
That the scheduler it starts runs the DAGs is ``tests/e2e/test_make_run.py``'s job."""

from __future__ import annotations

import importlib.util
import sys

from socialsuggest.stack.airflow import component_argv
from socialsuggest.stack.scheduler import PRELOAD, preload


def test_every_preloaded_module_exists() -> None:
    # a renamed pipeline module would otherwise only cost every task its import again
    missing = [name for name in PRELOAD if importlib.util.find_spec(name) is None]
    assert missing == []


def test_a_module_that_fails_to_import_is_reported_not_raised() -> None:
    failed = preload(("socialsuggest.no_such_module", "json"))
    assert len(failed) == 1
    assert failed[0].startswith("socialsuggest.no_such_module: ModuleNotFoundError")


def test_only_the_scheduler_is_started_through_it() -> None:
    assert component_argv("scheduler") == [sys.executable, "-m", "socialsuggest.stack.scheduler"]
    assert component_argv("triggerer")[1:] == ["triggerer"]

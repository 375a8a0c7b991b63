"""``airflow scheduler``, with the modules our tasks import already loaded.

Why: the LocalExecutor forks its workers from the scheduler process, and Airflow 3 runs
each task in a fork of a worker (the task SDK's supervisor). A task process therefore
starts with what the scheduler had imported: Airflow, but not pandas, scikit-learn,
MLflow, Great Expectations or our pipeline, which every task then imported on its own:
~7 s of CPU for the pipeline and 5 s more for Great Expectations in a validation task,
and the stack's first daily retrain runs ~30 tasks. Imported once here, before the
executor forks, they are shared copy-on-write (Airflow freezes the collector before it
forks, so the shared pages stay shared).

Nothing here starts a thread, a connection or a JVM: the imports only define modules.
A module that cannot be imported is skipped, not fatal (the task that needs it will say
why, as it would have without this), so the scheduler always starts.
"""

from __future__ import annotations

import importlib
import logging
import sys

#: What the DAG files and the task callables they call import (``dags/``,
#: ``socialsuggest.family_dag``): the heavy third-party modules come with them.
PRELOAD = (
    "socialsuggest.family_dag",
    "socialsuggest.lake",
    "socialsuggest.registry",
    "socialsuggest.catalog",
    "socialsuggest.privacy",
    "socialsuggest.processing.spark",
    "socialsuggest.processing.tags",
    "socialsuggest.processing.posts",
    "socialsuggest.pipeline.tags_cycle",
    "socialsuggest.pipeline.trends_cycle",
    "socialsuggest.pipeline.data_quality",
    "socialsuggest.pipeline.acceptance",
    "socialsuggest.training.fanout",
    "socialsuggest.training.policy",
    "socialsuggest.quality.expectations",
    "great_expectations",
)


def preload(modules: tuple[str, ...] = PRELOAD) -> list[str]:
    """Import ``modules``; the ones that failed, with why (printed by ``main``)."""
    # Great Expectations logs every API it registers at import, at INFO: ~40 lines of
    # noise at the head of the scheduler's log
    logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # the task that needs it will fail with the real error
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    return failed


def main() -> None:
    """``python -m socialsuggest.stack.scheduler [ARGS]`` = ``airflow scheduler [ARGS]``."""
    for problem in preload():
        print(f"socialsuggest scheduler: not preloaded: {problem}", file=sys.stderr)
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", "scheduler", *sys.argv[1:]]
    airflow_main()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()

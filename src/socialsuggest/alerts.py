"""Failure alerts for orchestrated runs: a local record, and a webhook when configured.

A top-level module importing only settings: DAG files import it at parse time.

Airflow calls :func:`on_failure` with the task context. The record
(``$SOCIALSUGGEST_HOME/alerts/failures.jsonl``) keeps what an operator needs to
find the run (DAG, task, run id, try, error type) and nothing from the run's
parameters: a deletion request's parameters are personal data. Other components
raise alerts through :func:`record_alert` (same file, same webhook, with a ``kind``).
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from socialsuggest.config import load_settings

log = logging.getLogger(__name__)
WEBHOOK_ENV = "SOCIALSUGGEST_ALERT_WEBHOOK"


def failure_record(context: Any) -> dict[str, Any]:
    """What failed: a task (task callbacks) or a whole run (DAG callbacks, e.g. a
    daily run that hit its ``dagrun_timeout``)."""
    ti = context.get("task_instance") or context.get("ti")
    run = context.get("dag_run")
    error = context.get("exception")
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "dag_id": getattr(ti, "dag_id", None) or getattr(run, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": getattr(ti, "run_id", None) or getattr(run, "run_id", None),
        "try_number": getattr(ti, "try_number", None),
        "error_type": type(error).__name__ if error is not None else None,
        "reason": context.get("reason"),
    }


def on_failure(context: Any) -> None:
    """Record the failure; POST it to ``SOCIALSUGGEST_ALERT_WEBHOOK`` if set."""
    record = failure_record(context)
    _deliver(
        record,
        f"socialsuggest: {record['dag_id']}.{record['task_id']} failed ({record['error_type']})",
    )


def record_alert(kind: str, details: dict[str, Any]) -> dict[str, Any]:
    """Record an operational alert that is not an Airflow failure (e.g. the serving
    process could not load a newly promoted model and keeps serving the previous one).

    Same file and webhook as :func:`on_failure`, so operators watch one place; the
    record carries ``kind`` to tell them apart. ``details`` must hold identifiers
    only (model name, version, error type), never request data: it is not erasable.
    """
    record = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "kind": kind, **details}
    summary = ", ".join(f"{k}={v}" for k, v in details.items() if k != "error")
    _deliver(record, f"socialsuggest: {kind} ({summary})")
    return record


def _deliver(record: dict[str, Any], text: str) -> None:
    """Append ``record`` to ``$SOCIALSUGGEST_HOME/alerts/failures.jsonl``; POST it with
    ``text`` to the webhook when one is configured (a failing webhook only warns)."""
    folder = Path(load_settings().home) / "alerts"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "failures.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    url = os.environ.get(WEBHOOK_ENV)
    if not url:
        return
    request = urllib.request.Request(
        url,
        data=json.dumps({"text": text, **record}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except OSError as exc:  # an alert must never mask the failure it reports
        log.warning("alert webhook failed: %s", type(exc).__name__)

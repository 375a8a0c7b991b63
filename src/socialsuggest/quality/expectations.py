"""Great Expectations suites for raw and processed data: the gate before training.

Why GE and not ad-hoc asserts: the suites are declarative, their results are a
standard document an operator can read (kept in the lake under
``audit/quality/<suite>/``), and the same suite runs in a DAG task, the CLI or a test.
A failing suite raises :class:`DataQualityError`, which stops the run before
anything is trained, so ``production`` stays as it was.

Volume is judged against history: per org, the rows of this window divided by the
median of the last runs must stay within ``[1/5, 5]`` (once three runs exist), so a
broken export that delivers a tenth of an org's messages stops the run instead of
training a starved model.

No personal data in the results: for a column that holds it (message ``text`` and every
field the event schemas mark personal) a failure keeps the count of unexpected values,
never the values, because ``audit/quality`` is outside a deletion request's reach and
the results are also logged to MLflow.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

import pandas as pd

from socialsuggest.events.schemas import MessageType, Network, personal_field_names
from socialsuggest.lake import Lake

VOLUME_STATE = "_state/quality/volume.json"
VOLUME_HISTORY = 7  # runs kept per org
VOLUME_BAND = 5.0  # allowed factor either way vs the median of the history
TEXT_MAX = 10_000
REDACTED = "<redacted: personal>"


class DataQualityError(RuntimeError):
    """A suite failed; the message names every failed expectation."""


@dataclass
class SuiteResult:
    suite: str
    success: bool
    rows: int
    evaluated: int
    failed: list[dict[str, Any]] = field(default_factory=list)
    window: dict[str, str] = field(default_factory=dict)
    result_path: str = ""
    orgs: int = 0  # distinct orgs in the window
    mlflow_run: str = ""  # the run's URL once the result is logged to MLflow

    def summary(self) -> dict[str, Any]:
        return asdict(self)


def _validate(name: str, frame: pd.DataFrame, expectations: list[Any]) -> tuple[bool, list[Any]]:
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    asset = context.data_sources.add_pandas(name).add_dataframe_asset(name)
    batch = asset.add_batch_definition_whole_dataframe("window")
    suite = context.suites.add(gx.ExpectationSuite(name=name))
    for expectation in expectations:
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch, suite=suite)
    )
    result = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
    return bool(result.success), list(result.results)


@cache
def _personal_columns() -> frozenset[str]:
    """Columns whose values are personal data: message text and the personal fields."""
    return frozenset({"text", *personal_field_names()})


def _columns(kwargs: dict[str, Any]) -> list[str]:
    """Every column an expectation names (single, pair or compound)."""
    named = [kwargs.get(k) for k in ("column", "column_A", "column_B")]
    return [str(c) for c in [*named, *(kwargs.get("column_list") or [])] if c]


def _failures(results: list[Any]) -> list[dict[str, Any]]:
    failed = []
    for item in results:
        if item.success:
            continue
        config = item.expectation_config
        outcome = item.result or {}
        partial = (outcome.get("partial_unexpected_list") or [])[:5]
        failure: dict[str, Any] = {
            "expectation": config.type,
            "column": config.kwargs.get("column"),
            "unexpected_count": outcome.get("unexpected_count"),
            "unexpected_percent": outcome.get("unexpected_percent"),
            "observed_value": _plain(outcome.get("observed_value")),
            "partial_unexpected": [str(v)[:80] for v in partial],
        }
        if _personal_columns().intersection(_columns(dict(config.kwargs))):
            failure["partial_unexpected"] = REDACTED if partial else []
            failure["partial_unexpected_count"] = len(partial)
            observed = failure["observed_value"]
            if not (observed is None or isinstance(observed, int | float)):
                failure["observed_value"] = REDACTED
        failed.append(failure)
    return failed


def _plain(value: Any) -> Any:
    try:
        json.dumps(value)
    except TypeError:
        return str(value)
    return value


def _window(lake: Lake, zone: str, dataset: str, dt_from: date, dt_to: date,
            orgs: list[str] | None, columns: list[str]) -> pd.DataFrame:  # fmt: skip
    files = lake.files(zone, dataset, dt_from=dt_from, dt_to=dt_to, orgs=orgs)
    if not files:
        return pd.DataFrame({c: [] for c in columns})
    frame: pd.DataFrame = lake.read([f.key for f in files], columns=columns).to_pandas()
    return frame


def validate_raw(
    lake: Lake,
    *,
    dt_to: date | None = None,
    days: int = 30,
    orgs: list[str] | None = None,
) -> SuiteResult:
    """The raw messages of the window: schema, nulls, vocabularies, lengths, volume."""
    import great_expectations as gx

    dt_to = dt_to or datetime.now(UTC).date()
    dt_from = dt_to - timedelta(days=days)
    columns = ["message_id", "org_id", "network", "message_type", "author_id", "text",
               "created_at", "tags"]  # fmt: skip
    frame = _window(lake, "raw", "messages", dt_from, dt_to, orgs, columns)
    frame["n_tags"] = frame["tags"].map(lambda tags: 0 if tags is None else len(tags))
    frame = frame.drop(columns=["tags"])
    e: Any = gx.expectations  # the package does not declare its exports for mypy
    expectations: list[Any] = [
        e.ExpectTableRowCountToBeBetween(min_value=1),
        *[e.ExpectColumnValuesToNotBeNull(column=c) for c in columns if c != "tags"],
        e.ExpectColumnValuesToBeInSet(column="network", value_set=[n.value for n in Network]),
        e.ExpectColumnValuesToBeInSet(
            column="message_type", value_set=[t.value for t in MessageType]
        ),
        e.ExpectColumnValueLengthsToBeBetween(column="text", min_value=1, max_value=TEXT_MAX),
        e.ExpectCompoundColumnsToBeUnique(column_list=["org_id", "message_id"]),
        # tag-count distribution: most messages carry a tag or two, none carries dozens
        e.ExpectColumnMeanToBeBetween(column="n_tags", min_value=0.2, max_value=5.0),
        e.ExpectColumnValuesToBeBetween(column="n_tags", min_value=0, max_value=20, mostly=0.999),
    ]
    success, results = _validate("raw_messages", frame, expectations)
    failed = _failures(results)
    counts = frame.groupby("org_id").size().to_dict() if len(frame) else {}
    volume_failures = _volume_check(lake, {str(k): int(v) for k, v in counts.items()})
    failed.extend(volume_failures)
    result = SuiteResult(
        suite="raw_messages",
        success=success and not volume_failures,
        rows=len(frame),
        evaluated=len(results) + (1 if counts else 0),
        failed=failed,
        window={"dt_from": dt_from.isoformat(), "dt_to": dt_to.isoformat()},
        orgs=len(counts),
    )
    _store(lake, result)
    if result.success:
        _remember_volume(lake, {str(k): int(v) for k, v in counts.items()})
    return result


def validate_processed(
    lake: Lake,
    *,
    dt_to: date | None = None,
    days: int = 30,
    orgs: list[str] | None = None,
) -> SuiteResult:
    """The processed tag examples: what training will read."""
    import great_expectations as gx

    dt_to = dt_to or datetime.now(UTC).date()
    dt_from = dt_to - timedelta(days=days)
    columns = ["message_id", "org_id", "network", "message_type", "text", "tags", "dt"]
    frame = _window(lake, "processed", "tags", dt_from, dt_to, orgs, columns)
    frame["n_tags"] = frame["tags"].map(lambda tags: 0 if tags is None else len(tags))
    frame = frame.drop(columns=["tags"])
    e: Any = gx.expectations  # the package does not declare its exports for mypy
    expectations: list[Any] = [
        e.ExpectTableRowCountToBeBetween(min_value=1),
        *[e.ExpectColumnValuesToNotBeNull(column=c) for c in columns if c != "tags"],
        e.ExpectColumnValuesToBeInSet(column="network", value_set=[n.value for n in Network]),
        e.ExpectColumnValueLengthsToBeBetween(column="text", min_value=0, max_value=TEXT_MAX),
        e.ExpectCompoundColumnsToBeUnique(column_list=["org_id", "message_id"]),
        e.ExpectColumnMeanToBeBetween(column="n_tags", min_value=0.2, max_value=5.0),
    ]
    success, results = _validate("processed_tags", frame, expectations)
    result = SuiteResult(
        suite="processed_tags",
        success=success,
        rows=len(frame),
        evaluated=len(results),
        failed=_failures(results),
        window={"dt_from": dt_from.isoformat(), "dt_to": dt_to.isoformat()},
        orgs=int(frame["org_id"].nunique()),
    )
    _store(lake, result)
    return result


def require(result: SuiteResult) -> SuiteResult:
    """Raise :class:`DataQualityError` naming the failed expectations, else pass through."""
    if not result.success:
        names = "; ".join(
            f"{f['expectation']}({f.get('column') or ''}) observed={f.get('observed_value')} "
            f"unexpected={f.get('unexpected_count')}"
            for f in result.failed
        )
        shown = f"; MLflow run: {result.mlflow_run}" if result.mlflow_run else ""
        raise DataQualityError(
            f"{result.suite}: {len(result.failed)} of {result.evaluated} expectations failed "
            f"({names}); result: {result.result_path}{shown}"
        )
    return result


def _volume_check(lake: Lake, counts: dict[str, int]) -> list[dict[str, Any]]:
    history = _volume_history(lake)
    failed = []
    for org, rows in sorted(counts.items()):
        past = history.get(org, [])
        if len(past) < 3:
            continue
        median = statistics.median(past)
        if median and not (median / VOLUME_BAND <= rows <= median * VOLUME_BAND):
            failed.append(
                {
                    "expectation": "org_volume_within_band_of_recent_runs",
                    "column": "org_id",
                    "org": org,
                    "observed_value": rows,
                    "median_recent": median,
                    "band": VOLUME_BAND,
                }
            )
    return failed


def _volume_history(lake: Lake) -> dict[str, list[int]]:
    if not lake.storage.exists(VOLUME_STATE):
        return {}
    data: dict[str, list[int]] = json.loads(lake.storage.get(VOLUME_STATE))
    return data


def _remember_volume(lake: Lake, counts: dict[str, int]) -> None:
    history = _volume_history(lake)
    for org, rows in counts.items():
        history[org] = [*history.get(org, []), rows][-VOLUME_HISTORY:]
    lake.storage.put(VOLUME_STATE, json.dumps(history, sort_keys=True).encode())


def _store(lake: Lake, result: SuiteResult) -> None:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    result.result_path = f"audit/quality/{result.suite}/{stamp}.json"
    lake.storage.put(result.result_path, json.dumps(result.summary(), indent=1).encode())

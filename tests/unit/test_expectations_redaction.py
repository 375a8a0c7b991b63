"""Data-quality results keep no personal data: counts of bad values, never the values.

The result documents live in ``audit/quality`` (a zone a deletion request does not
rewrite) and are logged to MLflow, so a message text or an author id in them would
outlive its erasure.
"""

from __future__ import annotations

import json
from datetime import date
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest

from socialsuggest.events.schemas import MessageV1
from socialsuggest.ingest import ingest_events
from socialsuggest.lake import Lake
from socialsuggest.quality.expectations import (
    REDACTED,
    DataQualityError,
    _failures,
    require,
    validate_raw,
)

SECRET = "MY-HOME-ADDRESS-IS-42-ELM-STREET "  # stands for personal data in a message
DAY = date(2026, 10, 5)


def _messages(n: int) -> list[dict[str, Any]]:
    return [
        {"event_type": "message", "message_id": f"m{i}", "org_id": "acme",
         "network": "twitter", "message_type": "mention", "author_id": f"u-{i}",
         "text": f"message {i}", "created_at": "2026-10-05T12:00:00Z",
         "tags": [{"tag": "billing", "applied_by": "agent-1"}]}
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.slow
def test_a_failing_raw_suite_stores_counts_not_texts_or_authors(lake: Lake) -> None:
    ingest_events(lake, _messages(8))
    # an upstream writer bypassing the ingest: a text over the limit, a row without author
    rows = lake.read_file(lake.files("raw", "messages")[0].key).to_pylist()[:2]
    rows[0].update(message_id="m-long", text=SECRET * 400)  # ~13,000 characters
    rows[1].update(message_id="m-anon", author_id=None)
    schema = MessageV1.arrow_schema()
    author = schema.get_field_index("author_id")
    schema = schema.set(author, schema.field(author).with_nullable(True))
    lake.write("raw", "messages", DAY, "acme", pa.Table.from_pylist(rows, schema=schema))

    result = validate_raw(lake, dt_to=date(2026, 10, 31), days=30)

    assert not result.success and result.rows == 10 and result.orgs == 1
    by_column = {(f["expectation"], f["column"]): f for f in result.failed}
    too_long = by_column["expect_column_value_lengths_to_be_between", "text"]
    assert too_long["unexpected_count"] == 1
    assert too_long["partial_unexpected"] == REDACTED
    assert too_long["partial_unexpected_count"] == 1
    no_author = by_column["expect_column_values_to_not_be_null", "author_id"]
    assert no_author["unexpected_count"] == 1 and no_author["partial_unexpected"] == REDACTED
    stored = lake.storage.get(result.result_path).decode()
    assert result.result_path.startswith("audit/quality/raw_messages/")
    assert json.loads(stored)["failed"] == json.loads(json.dumps(result.failed))
    for text in (stored, json.dumps(result.summary())):
        assert "ELM-STREET" not in text and "u-1" not in text
    with pytest.raises(DataQualityError) as raised:
        require(result)
    assert "ELM-STREET" not in str(raised.value)


def _outcome(column: str | None, values: list[Any], **kwargs: Any) -> Any:
    """A failed GE expectation result with just what ``_failures`` reads."""
    config = SimpleNamespace(type="expect_x", kwargs={"column": column, **kwargs})
    result = {"unexpected_count": len(values), "partial_unexpected_list": values,
              "observed_value": values[0] if values else None}  # fmt: skip
    return SimpleNamespace(success=False, expectation_config=config, result=result)


def test_only_personal_columns_are_redacted() -> None:
    failed = _failures(
        [
            _outcome("network", ["myspace", "friendster"]),
            _outcome("author_id", ["u-secret"]),
            _outcome("text", [SECRET]),
            _outcome(
                None,
                [{"org_id": "acme", "author_id": "u-secret"}],
                column_list=["org_id", "author_id"],
            ),
            _outcome("author_id", []),
        ]
    )
    network, author, text, compound, empty = failed
    assert network["partial_unexpected"] == ["myspace", "friendster"]
    assert network["observed_value"] == "myspace"  # not personal: kept for the operator
    for personal in (author, text, compound):
        assert personal["partial_unexpected"] == REDACTED
        assert personal["partial_unexpected_count"] == 1
        assert personal["observed_value"] == REDACTED
    assert empty["partial_unexpected"] == [] and empty["partial_unexpected_count"] == 0
    assert "u-secret" not in json.dumps(failed) and "ELM" not in json.dumps(failed)

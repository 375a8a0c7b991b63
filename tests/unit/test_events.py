from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from socialsuggest.events import EventValidationError, MessageV1, PostV1, parse_event
from socialsuggest.events.schemas import personal_field_names


def message(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event_type": "message",
        "schema_version": 1,
        "message_id": "m1",
        "org_id": "acme",
        "network": "twitter",
        "message_type": "mention",
        "author_id": "au-1",
        "text": "  my order never arrived  ",
        "created_at": "2026-03-01T10:00:00+02:00",
        "tags": [{"tag": "shipping", "applied_by": "ag-1"}],
    }
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not ...}


def test_valid_message_is_typed_and_normalised() -> None:
    event = parse_event(message())
    assert isinstance(event, MessageV1)
    assert event.created_at == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert event.text == "my order never arrived"
    assert event.dataset == "messages"
    assert event.key == "message|acme|m1"
    assert event.subject_ids() == {"au-1", "ag-1"}


def test_content_hash_changes_with_content_only() -> None:
    a, b = parse_event(message()), parse_event(message())
    assert a.content_hash() == b.content_hash()
    assert parse_event(message(text="other")).content_hash() != a.content_hash()


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"text": ...}, "text", "is required"),
        ({"text": "   "}, "text", "at least 1 character"),
        ({"network": "myspace"}, "network", "'twitter'"),
        ({"message_type": "fax"}, "message_type", "'mention'"),
        ({"created_at": "2026-03-01T10:00:00"}, "created_at", "timezone"),
        ({"created_at": "yesterday"}, "created_at", "datetime"),
        ({"org_id": "ACME Inc."}, "org_id", "lowercase letters"),
        ({"author_id": ""}, "author_id", "is required"),
        ({"tags": [{"tag": None, "applied_by": "ag-1"}]}, "tags.0.tag", "string"),
        ({"tags": [{"tag": "x"}]}, "tags.0.applied_by", "is required"),
        ({"tags": "[not json"}, "tags", "not a valid JSON list"),
        ({"colour": "red"}, "colour", "unknown fields are refused"),
        ({"schema_version": 9}, "schema_version", "unsupported version 9"),
        ({"schema_version": "v1"}, "schema_version", "not an integer"),
        ({"event_type": "tweet"}, "event_type", "unknown type 'tweet'"),
    ],
)
def test_rejections_name_the_field_and_reason(
    overrides: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(EventValidationError) as caught:
        parse_event(message(**overrides))
    fields = {e.field: e.reason for e in caught.value.errors}
    assert field in fields, caught.value.errors
    assert reason in fields[field]


def test_all_errors_are_reported_at_once() -> None:
    with pytest.raises(EventValidationError) as caught:
        parse_event(message(network="myspace", text=..., org_id="A B"))
    assert {e.field for e in caught.value.errors} >= {"network", "text", "org_id"}


def test_missing_type_uses_default_and_missing_version_means_one() -> None:
    record = message()
    del record["event_type"], record["schema_version"]
    with pytest.raises(EventValidationError, match="event_type: is required"):
        parse_event(record)
    assert parse_event(record, default_type="message").schema_version == 1


def test_csv_style_values_are_decoded() -> None:
    event = parse_event(message(tags='[{"tag": "refund", "applied_by": "ag-2"}]'))
    assert isinstance(event, MessageV1)
    assert [t.tag for t in event.tags] == ["refund"]
    post = parse_event(
        {
            "event_type": "post",
            "post_id": "p1",
            "org_id": "acme",
            "network": "instagram",
            "author_id": "ag-1",
            "text": "summer sale",
            "hashtags": "#Summer, #SALE",
            "created_at": "2026-03-01T10:00:00Z",
        }
    )
    assert isinstance(post, PostV1)
    assert post.hashtags == ["summer", "sale"]


def test_other_event_types_validate() -> None:
    lifecycle = parse_event(
        {"event_type": "tag_lifecycle", "org_id": "acme", "tag": "refund", "action": "archived",
         "at": "2026-03-01T00:00:00Z", "actor_id": "ag-9"}
    )  # fmt: skip
    assert lifecycle.dataset == "tag_events" and lifecycle.subject_ids() == {"ag-9"}
    with pytest.raises(EventValidationError, match="action"):
        parse_event({"event_type": "tag_lifecycle", "org_id": "acme", "tag": "x",
                     "action": "deleted", "at": "2026-03-01T00:00:00Z"})  # fmt: skip
    chosen = parse_event(
        {"event_type": "saved_reply_chosen", "org_id": "acme", "message_id": "m1",
         "reply_id": "r1", "at": "2026-03-01T00:00:00Z"}
    )  # fmt: skip
    assert chosen.dataset == "reply_choices" and chosen.subject_ids() == set()


def test_personal_fields_are_declared_in_the_schemas() -> None:
    assert personal_field_names() == {
        "author_id",
        "applied_by",
        "actor_id",
        "agent_id",
        "recipient_id",
    }


def test_non_object_record_is_rejected() -> None:
    with pytest.raises(EventValidationError, match="record: is not an object"):
        parse_event(["not", "an", "object"])  # type: ignore[arg-type]


def test_a_sent_reply_names_its_agent_and_its_recipient_as_subjects() -> None:
    event = parse_event(
        {"event_type": "reply_sent", "org_id": "acme", "reply_message_id": "m1-r",
         "message_id": "m1", "agent_id": "ag-1", "recipient_id": "au-9",
         "text": "Hi Anna, sorry to hear that.", "sent_at": "2026-10-01T12:00:00Z"}
    )  # fmt: skip
    assert event.dataset == "replies_sent"
    assert event.subject_ids() == {"ag-1", "au-9"}
    with pytest.raises(EventValidationError, match="text"):
        parse_event(
            {
                "event_type": "reply_sent",
                "org_id": "acme",
                "reply_message_id": "r",
                "message_id": "m1",
                "agent_id": "ag-1",
                "sent_at": "2026-10-01T12:00:00Z",
            }
        )

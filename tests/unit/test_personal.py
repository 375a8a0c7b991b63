"""Personal columns of lake tables: find, erase, redact, export, count."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from socialsuggest.events.schemas import MessageV1
from socialsuggest.ingest.ingest import QUARANTINE_SCHEMA
from socialsuggest.lake.personal import count_subject, erase, layout, matching_rows, subjects_in
from socialsuggest.privacy.keys import privacy_key, subject_hash

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _messages() -> pa.Table:
    rows = []
    for i, (author, agents) in enumerate(
        [("u1", ["a1"]), ("u2", ["a1", "a2"]), ("u1", []), ("u3", ["a2", "a1", "a1"]), ("u4", [])]
    ):
        rows.append(
            {
                "event_type": "message", "schema_version": 1, "message_id": f"m{i}",
                "org_id": "acme", "network": "twitter", "message_type": "mention",
                "author_id": author, "text": f"text {i}", "created_at": NOW,
                "tags": [{"tag": f"t{j}", "applied_by": a, "applied_at": NOW}
                         for j, a in enumerate(agents)],
                "_key": f"k{i}", "_record_hash": "h", "_source": "s", "_ingested_at": NOW,
            }
        )  # fmt: skip
    return pa.Table.from_pylist(rows, schema=MessageV1.arrow_schema())


def test_layout_comes_from_the_schema_marks() -> None:
    spec = layout(MessageV1.arrow_schema())
    assert spec.direct == ("author_id",)
    assert spec.nested == (("tags", "applied_by"),)
    assert layout(QUARANTINE_SCHEMA).lists == ("subject_ids",)
    assert not layout(pa.schema([pa.field("text", pa.string())]))


def test_subjects_in_finds_authors_and_nested_agents() -> None:
    assert subjects_in(_messages()) == {"u1", "u2", "u3", "u4", "a1", "a2"}


def test_erasing_an_author_removes_their_rows_only() -> None:
    table = _messages()
    result = erase(table, "u1")
    assert (result.rows_removed, result.values_redacted) == (2, 0)
    assert result.kept.column("author_id").to_pylist() == ["u2", "u3", "u4"]
    assert result.kept.schema == table.schema
    assert count_subject(result.kept, "u1") == 0


def test_erasing_an_agent_redacts_nested_mentions_and_keeps_other_peoples_rows() -> None:
    table = _messages()
    assert count_subject(table, "a1") == 3
    result = erase(table, "a1")
    assert result.rows_removed == 0
    assert result.values_redacted == 4
    assert result.kept.num_rows == table.num_rows
    tags = result.kept.column("tags").to_pylist()
    assert [[t["applied_by"] for t in row] for row in tags] == [
        [None],
        [None, "a2"],
        [],
        ["a2", None, None],
        [],
    ]
    assert [[t["tag"] for t in row] for row in tags][3] == ["t0", "t1", "t2"]  # tags stay
    assert count_subject(result.kept, "a1") == 0
    assert "a1" not in subjects_in(result.kept)


def test_erase_works_on_chunked_and_sliced_tables() -> None:
    table = _messages()
    chunked = pa.concat_tables([table.slice(0, 2), table.slice(2)])
    assert chunked.column("tags").num_chunks == 2
    result = erase(chunked, "a1")
    assert result.values_redacted == 4 and count_subject(result.kept, "a1") == 0
    sliced = table.slice(1, 3)  # offsets do not start at zero
    result = erase(sliced, "a1")
    assert result.values_redacted == 3
    assert [[t["applied_by"] for t in r] for r in result.kept.column("tags").to_pylist()] == [
        [None, "a2"], [], ["a2", None, None]
    ]  # fmt: skip


def test_subject_id_lists_remove_the_row() -> None:
    table = pa.table(
        {"record": ["x", "y", "z"], "subject_ids": [["u1", "a1"], ["u2"], None]},
    )
    result = erase(table, "a1")
    assert result.rows_removed == 1 and result.kept.column("record").to_pylist() == ["y", "z"]


def test_an_absent_subject_changes_nothing() -> None:
    result = erase(_messages(), "nobody")
    assert not result.changed and result.kept.num_rows == 5


def test_export_returns_owned_rows_whole_and_only_the_subjects_nested_items() -> None:
    owned = matching_rows(_messages(), "u1")
    assert [r["message_id"] for r in owned] == ["m0", "m2"]
    touched = matching_rows(_messages(), "a2")
    assert touched == [
        {"message_id": "m1", "org_id": "acme",
         "tags": [{"tag": "t1", "applied_by": "a2", "applied_at": NOW}]},
        {"message_id": "m3", "org_id": "acme",
         "tags": [{"tag": "t0", "applied_by": "a2", "applied_at": NOW}]},
    ]  # fmt: skip
    assert all("author_id" not in r and "text" not in r for r in touched)


def test_subject_hash_is_keyed_and_stable(
    settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from socialsuggest.config import Settings, load_settings

    assert isinstance(settings, Settings)
    key = privacy_key(settings)
    assert privacy_key(settings) == key  # the key file is reused
    assert (settings.home / "privacy.key").stat().st_mode & 0o077 == 0
    assert subject_hash("u1", key) == subject_hash("u1", key) != subject_hash("u2", key)
    assert subject_hash("u1", key) != subject_hash("u1", b"another key")
    monkeypatch.setenv("SOCIALSUGGEST_PRIVACY_KEY", "from-env")
    assert privacy_key(load_settings(home=settings.home)) == b"from-env"
    monkeypatch.delenv("SOCIALSUGGEST_PRIVACY_KEY")
    with pytest.raises(ValueError, match="SOCIALSUGGEST_PRIVACY_KEY"):
        privacy_key(load_settings(home=settings.home, profile="services"))

"""Time splits, training-time readers and the tag lifecycle (no Spark needed)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from socialsuggest.ingest import ingest_events
from socialsuggest.lake import Lake
from socialsuggest.processing import (
    PROCESSED_SCHEMA,
    TagLifecycle,
    archived_tags,
    load_examples,
    load_tag_lifecycle,
    time_split,
)
from socialsuggest.processing.splits import newest

T0 = datetime(2026, 10, 20, tzinfo=UTC)
EVENT_SCHEMA = pa.schema(
    [
        ("org_id", pa.string()),
        ("tag", pa.string()),
        ("action", pa.string()),
        ("at", pa.timestamp("us", tz="UTC")),
    ]
)


def _frame(n: int, org: str = "acme") -> pd.DataFrame:
    # created_at deliberately shuffled, and with ties, to check ordering
    times = [T0 + timedelta(hours=(i * 7) % n // 2) for i in range(n)]
    return pd.DataFrame(
        {"message_id": [f"m{i:03d}" for i in range(n)], "org_id": org, "created_at": times}
    )


def test_time_split_orders_by_time_then_id_and_sizes() -> None:
    train, valid, test = time_split(_frame(100))
    assert (len(train), len(valid), len(test)) == (70, 20, 10)
    assert train["created_at"].max() <= valid["created_at"].min()
    assert valid["created_at"].max() <= test["created_at"].min()
    whole = pd.concat([train, valid, test])
    assert list(zip(whole["created_at"], whole["message_id"], strict=True)) == sorted(
        zip(whole["created_at"], whole["message_id"], strict=True)
    )
    assert set(whole["message_id"]) == {f"m{i:03d}" for i in range(100)}


def test_newest_keeps_the_newest_rows_oldest_first() -> None:
    frame = _frame(100)
    kept = newest(frame.sample(frac=1.0, random_state=0), 30)
    ordered = frame.sort_values(["created_at", "message_id"]).reset_index(drop=True)
    assert list(kept["message_id"]) == list(ordered["message_id"].iloc[-30:])
    assert newest(frame, None) is frame and newest(frame, 100) is frame


def test_time_split_small_sets_keep_one_row_each() -> None:
    train, valid, test = time_split(_frame(12), valid_frac=0.05, test_frac=0.05)
    assert (len(train), len(valid), len(test)) == (10, 1, 1)


def test_time_split_refuses_too_few_rows_naming_the_org() -> None:
    with pytest.raises(ValueError, match=r"org globex: 9 examples, at least 10"):
        time_split(_frame(9, org="globex"))


@pytest.mark.parametrize(("valid", "test"), [(0.0, 0.1), (0.5, 0.5), (0.1, 1.2)])
def test_time_split_refuses_bad_fractions(valid: float, test: float) -> None:
    with pytest.raises(ValueError, match="valid_frac"):
        time_split(_frame(50), valid_frac=valid, test_frac=test)


def _processed(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=PROCESSED_SCHEMA)


def _row(
    mid: str, at: datetime, org: str = "acme", tags: list[str] | None = None
) -> dict[str, Any]:
    return {
        "message_id": mid,
        "org_id": org,
        "created_at": at,
        "dt": at.date(),
        "author_id": f"au-{mid}",
        "network": "twitter",
        "message_type": "mention",
        "text": "hello",
        "text_raw_len": 5,
        "tags": tags if tags is not None else ["a", "b"],
    }


def test_load_examples_reads_one_org_in_time_order(lake: Lake) -> None:
    day1, day2 = T0, T0 + timedelta(days=1)
    lake.write("processed", "tags", day2.date(), "acme", _processed([_row("m3", day2)]))
    day1_rows = [_row("m2", day1 + timedelta(hours=1)), _row("m1", day1, tags=[])]
    lake.write("processed", "tags", day1.date(), "acme", _processed(day1_rows))
    lake.write("processed", "tags", day1.date(), "globex", _processed([_row("g1", day1, "globex")]))

    examples = load_examples(lake, "acme")
    assert examples["message_id"].tolist() == ["m1", "m2", "m3"]
    assert examples["tags"].tolist() == [[], ["a", "b"], ["a", "b"]]
    assert str(examples["created_at"].dt.tz) == "UTC"
    only_day2 = load_examples(lake, "acme", dt_from=day2.date(), dt_to=day2.date())
    assert only_day2["message_id"].tolist() == ["m3"]
    empty = load_examples(lake, "nobody")
    assert empty.empty and list(empty.columns) == PROCESSED_SCHEMA.names


def _event(tag: str, action: str, at: datetime, org: str = "acme") -> dict[str, Any]:
    return {
        "event_type": "tag_lifecycle",
        "schema_version": 1,
        "org_id": org,
        "tag": tag,
        "action": action,
        "at": at.isoformat(),
    }


@pytest.fixture
def lifecycle_lake(lake: Lake) -> Lake:
    h = timedelta(hours=1)
    events = [
        _event("billing", "created", T0 - 100 * h),
        _event("refund", "created", T0 - 100 * h),
        _event("refund", "archived", T0),
        _event("promo", "created", T0),
        _event("promo", "archived", T0 + 10 * h),
        _event("promo", "created", T0 + 20 * h),  # re-created after archive: active
        _event("legacy", "archived", T0 + 5 * h),  # creation never seen
        _event("billing", "created", T0, org="globex"),
    ]
    assert ingest_events(lake, events).written_total == len(events)
    return lake


def test_load_tag_lifecycle_keeps_the_latest_state_per_tag(lifecycle_lake: Lake) -> None:
    frame = load_tag_lifecycle(lifecycle_lake, "acme")
    by_tag = frame.set_index("tag")
    assert list(frame.columns) == ["org_id", "tag", "created_at", "archived_at"]
    assert sorted(by_tag.index) == ["billing", "legacy", "promo", "refund"]
    assert by_tag.loc["refund", "archived_at"] == T0
    assert pd.isna(by_tag.loc["promo", "archived_at"])
    assert by_tag.loc["promo", "created_at"] == T0 + timedelta(hours=20)
    assert pd.isna(by_tag.loc["legacy", "created_at"])
    assert set(load_tag_lifecycle(lifecycle_lake)["org_id"]) == {"acme", "globex"}


def test_archived_tags_as_of(lifecycle_lake: Lake) -> None:
    frame = load_tag_lifecycle(lifecycle_lake)
    assert archived_tags(frame, "acme", T0 - timedelta(seconds=1)) == set()
    assert archived_tags(frame, "acme", T0) == {"refund"}
    assert archived_tags(frame, "acme", T0 + timedelta(days=1)) == {"refund", "legacy"}
    assert archived_tags(frame, "globex", T0 + timedelta(days=1)) == set()


def test_lifecycle_intervals(lifecycle_lake: Lake) -> None:
    life = TagLifecycle.load(lifecycle_lake)
    h = timedelta(hours=1)
    assert life.is_active("acme", "refund", T0 - h) and not life.is_active("acme", "refund", T0)
    assert not life.is_active("acme", "promo", T0 - h)  # before its creation
    assert life.is_active("acme", "promo", T0 + h)
    assert not life.is_active("acme", "promo", T0 + 15 * h)  # the archived gap
    assert life.is_active("acme", "promo", T0 + 30 * h)
    assert life.is_active("acme", "legacy", T0) and not life.is_active("acme", "legacy", T0 + 6 * h)
    assert life.is_active("acme", "never-heard-of", T0)  # unknown creation = allowed
    assert not life.is_active("globex", "billing", T0 - h)  # lifecycles are per org


def test_day_fingerprint_changes_only_for_days_and_tags_a_change_touches() -> None:
    def life(*events: tuple[str, str, datetime]) -> TagLifecycle:
        return TagLifecycle.from_table(
            pa.Table.from_pylist(
                [{"org_id": "acme", "tag": t, "action": a, "at": at} for t, a, at in events],
                schema=EVENT_SCHEMA,
            )
        )

    before = life(("a", "created", T0 - timedelta(days=30)))
    after = life(
        ("a", "created", T0 - timedelta(days=30)), ("a", "archived", T0 + timedelta(hours=5))
    )
    day = T0.date()
    for d, changed in [(day - timedelta(days=1), False), (day, True), (day + timedelta(1), True)]:
        same = before.day_fingerprint("acme", d, ["a", "b"]) == after.day_fingerprint(
            "acme", d, ["a", "b"]
        )
        assert same is not changed, d
    # a day that never carried tag "a" is not affected by its archive
    assert before.day_fingerprint("acme", day, ["b"]) == after.day_fingerprint("acme", day, ["b"])
    # a tag without events is "active all day", the same as one created long before
    assert before.day_fingerprint("acme", date(2026, 10, 1), ["a"]) == TagLifecycle(
        {}
    ).day_fingerprint("acme", date(2026, 10, 1), ["a"])

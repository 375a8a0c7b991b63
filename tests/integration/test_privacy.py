"""GDPR deletion requests, verification, retention and export, on both catalog backends.

One lake is built once (the small sample ingested, preprocessed by a real Spark
session, plus serving logs) and copied into every test; each test then builds its
catalog from that lake's outbox on the backend ``catalog_settings`` selects, so the
same assertions run against SQLite and a real Elasticsearch server.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from socialsuggest.catalog import Query, sync_outbox
from socialsuggest.config import Settings, load_settings
from socialsuggest.events.schemas import personal_field_names
from socialsuggest.ingest import ingest_events, ingest_paths
from socialsuggest.lake import PERSONAL_ZONES, Lake
from socialsuggest.privacy import Privacy, open_privacy, subject_hash
from socialsuggest.sampledata import Manifest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.slow
LOG_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string()),
        pa.field("org_id", pa.string()),
        pa.field("author_id", pa.string()),
        pa.field("agent_id", pa.string()),
        pa.field("text", pa.string()),
    ]
)


# ---- the shared lake ------------------------------------------------------------------
@pytest.fixture(scope="module")
def base_lake(
    tmp_path_factory: pytest.TempPathFactory,
    small_sample: tuple[Path, Manifest],
    spark: SparkSession,
) -> tuple[Path, dict[str, str]]:
    """raw + quarantine (ingest), processed (Spark), logs; returns (lake dir, subjects)."""
    from socialsuggest.processing import preprocess_tags

    home = tmp_path_factory.mktemp("privacy") / "var"
    settings = load_settings(home=home, spark_master="local[2]")
    lake = Lake.from_settings(settings)
    ingest_paths(lake, [small_sample[0]])
    preprocess_tags(spark, lake, settings=settings)
    raw = lake.read([f.key for f in lake.files("raw", "messages")])
    quarantined = lake.read([f.key for f in lake.files("quarantine")])
    in_quarantine = {s for ids in quarantined.column("subject_ids").to_pylist() for s in ids or []}
    authors = Counter(raw.column("author_id").to_pylist())
    # the subject: an author with data in raw, processed, quarantine and the logs
    author = max((a for a in authors if a in in_quarantine), key=lambda a: authors[a])
    agents = Counter(t["applied_by"] for ts in raw.column("tags").to_pylist() for t in ts)
    agent = agents.most_common(1)[0][0]
    other = authors.most_common(3)[-1][0]
    day = date(2026, 10, 30)
    for org in ("org-a", "org-b"):
        rows = [
            {"request_id": f"r{org}{i}", "org_id": org, "author_id": who, "agent_id": agent,
             "text": f"hello {i}"}
            for i, who in enumerate([author, other, author, "u-elsewhere", None])
        ]  # fmt: skip
        table = pa.Table.from_pylist(rows, schema=LOG_SCHEMA)
        lake.write("logs", "tag_requests", day, org, table, {author, other, agent, "u-elsewhere"})
    return home / "lake", {"author": author, "agent": agent, "other": other}


@pytest.fixture
def world(
    base_lake: tuple[Path, dict[str, str]], catalog_settings: dict[str, Any], tmp_path: Path
) -> tuple[Privacy, Settings, dict[str, str]]:
    home = tmp_path / "var"
    shutil.copytree(base_lake[0], home / "lake")
    settings = load_settings(home=home, **catalog_settings)
    return open_privacy(settings), settings, base_lake[1]


def _rows(lake: Lake) -> dict[str, list[dict[str, Any]]]:
    """Every row of every personal-data dataset, by zone/dataset."""
    found: dict[str, list[dict[str, Any]]] = {}
    for zone in PERSONAL_ZONES:
        for part in lake.files(zone):
            rows = lake.read_file(part.key).to_pylist()
            found.setdefault(f"{zone}/{part.dataset}", []).extend(rows)
    return found


def _mentions(row: Any, subject: str) -> bool:
    if isinstance(row, dict):
        return any(_mentions(v, subject) for v in row.values())
    if isinstance(row, list):
        return any(_mentions(v, subject) for v in row)
    return row == subject


def _owns(row: dict[str, Any], subject: str) -> bool:
    """The row is about the subject (a top-level personal field or its subject list)."""
    return any(row.get(name) == subject for name in personal_field_names()) or subject in (
        row.get("subject_ids") or []
    )


def _key(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def _assert_erased(before: dict[str, list[dict[str, Any]]], lake: Lake, subject: str) -> int:
    """Subject absent; rows without the subject identical; returns rows removed."""
    after = _rows(lake)
    removed = 0
    for dataset, rows in before.items():
        now = after.get(dataset, [])
        assert not any(_mentions(r, subject) for r in now), f"{subject} still in {dataset}"
        untouched = Counter(_key(r) for r in rows if not _mentions(r, subject))
        assert Counter(_key(r) for r in now if _key(r) in untouched) == untouched, dataset
        owned = [r for r in rows if _owns(r, subject)]
        assert len(now) == len(rows) - len(owned), dataset
        removed += len(owned)
    return removed


# ---- deletion requests ----------------------------------------------------------------
def test_forget_erases_the_subject_from_every_zone_and_nothing_else(
    world: tuple[Privacy, Settings, dict[str, str]], tmp_path: Path
) -> None:
    privacy, _, who = world
    subject = who["author"]
    before = _rows(privacy.lake)
    zones_before = {d for d, rows in before.items() if any(_mentions(r, subject) for r in rows)}
    assert {"raw/messages", "processed/tags", "logs/tag_requests"} <= zones_before
    assert any(d.startswith("quarantine/") for d in zones_before)

    outcome = privacy.forget(subject, reason="ticket GDPR-1")

    journal = outcome.journal
    assert journal.done and not outcome.already_done
    removed = _assert_erased(before, privacy.lake, subject)
    assert journal.rows_removed == removed > 0
    assert {f"{s.zone}/{s.dataset}" for s in journal.objects} == zones_before
    assert journal.verification["passed"] and journal.verification["rows_found"] == 0
    kept = [s for s in journal.objects if s.state == "rewritten"]
    assert journal.verification["objects_scanned"] >= len(kept)
    assert privacy.catalog.count(Query(subject_id=subject)) == 0
    # every rewritten object's catalog document describes the new file
    for step in journal.objects:
        doc = privacy.catalog.get(step.path)
        if step.state in ("deleted", "gone"):
            assert doc is None and not privacy.lake.storage.exists(step.path)
        else:
            assert doc is not None and doc.sha256 == step.sha256_after
            assert subject not in doc.subject_ids
            assert doc.rows == step.rows_after == step.rows_before - step.rows_removed
    # the audit record holds a keyed hash, never the id
    audit = privacy.journals.storage.get(privacy.journals.key(journal.request_id)).decode()
    assert subject not in audit
    assert journal.subject_hash == subject_hash(subject, privacy.key)
    assert json.loads(audit)["reason"] == "ticket GDPR-1"
    assert sorted(journal.orgs_retrain) == sorted(
        {s.org for s in journal.objects if s.zone in ("raw", "processed")}
    )
    assert set(privacy.retrain.pending()) == set(journal.orgs_retrain)
    # right of access afterwards: nothing; full verification: nothing
    export = privacy.export(subject, tmp_path / "export.json")
    assert export["records"] == 0
    full = privacy.verify(subject, full=True)
    assert full["passed"] and full["scope"] == "full"
    assert full["objects_scanned"] == sum(len(privacy.lake.files(z)) for z in PERSONAL_ZONES)


def test_forget_reaches_posts_sent_replies_and_the_processed_posts(
    world: tuple[Privacy, Settings, dict[str, str]], spark: SparkSession
) -> None:
    """The hashtag and reply families' data: an agent's drafted posts (raw and the
    processed copy the hashtag models train on) and the replies they sent; a customer's
    replies received. Found by the same schema marks as messages, with no per-dataset
    list, so this guards that nothing of theirs is left when a family is added."""
    from socialsuggest.processing.posts import preprocess_posts

    privacy, settings, _ = world
    preprocess_posts(lambda: spark, privacy.lake, settings=settings)
    posts = privacy.lake.read([f.key for f in privacy.lake.files("raw", "posts")])
    sent = privacy.lake.read([f.key for f in privacy.lake.files("raw", "replies_sent")])
    agents = set(sent.column("agent_id").to_pylist())
    writer = Counter(a for a in posts.column("author_id").to_pylist() if a in agents)
    assert writer, "the sample has an agent who both posts and replies"
    agent = writer.most_common(1)[0][0]
    recipient = Counter(r for r in sent.column("recipient_id").to_pylist() if r).most_common(1)
    for subject, expected in (
        (agent, {"raw/posts", "processed/hashtags", "raw/replies_sent"}),
        (recipient[0][0], {"raw/replies_sent"}),
    ):
        before = _rows(privacy.lake)
        held = {d for d, rows in before.items() if any(_mentions(r, subject) for r in rows)}
        assert expected <= held, held
        outcome = privacy.forget(subject)
        removed = _assert_erased(before, privacy.lake, subject)
        assert outcome.journal.rows_removed == removed > 0
        assert {f"{o.zone}/{o.dataset}" for o in outcome.journal.objects} == held
        assert outcome.journal.verification["passed"]


def test_forgetting_an_agent_redacts_their_tags_and_keeps_the_messages(
    world: tuple[Privacy, Settings, dict[str, str]],
) -> None:
    privacy, _, who = world
    agent = who["agent"]
    before = _rows(privacy.lake)
    messages_before = len(before["raw/messages"])
    outcome = privacy.forget(agent)
    removed = _assert_erased(before, privacy.lake, agent)
    after = _rows(privacy.lake)
    assert len(after["raw/messages"]) == messages_before  # agents own no messages
    assert sum(s.values_redacted for s in outcome.journal.objects) > 0
    assert outcome.journal.rows_removed == removed  # their own actions (logs, choices)
    tagged = [t for r in after["raw/messages"] for t in r["tags"] if t["applied_by"] is None]
    assert tagged and all(t["tag"] for t in tagged)  # the tag stays, who applied it goes


def test_rerunning_a_finished_request_is_a_noop_and_new_data_opens_a_new_one(
    world: tuple[Privacy, Settings, dict[str, str]],
) -> None:
    privacy, _, who = world
    subject = who["other"]
    first = privacy.forget(subject)
    again = privacy.forget(subject)
    assert again.already_done and again.journal.request_id == first.journal.request_id
    assert len(privacy.requests()) == 1
    # the subject writes again after the request: that is new data, a new request
    ingest_events(privacy.lake, [{
        "event_type": "message", "message_id": "late-1", "org_id": "late-org",
        "network": "twitter", "message_type": "mention", "author_id": subject,
        "text": "hello again", "created_at": "2026-10-31T10:00:00Z", "tags": [],
    }])  # fmt: skip
    third = privacy.forget(subject)
    assert not third.already_done and third.journal.request_id != first.journal.request_id
    assert third.journal.rows_removed == 1


def test_every_object_is_found_even_when_the_catalog_starts_empty_and_lags(
    world: tuple[Privacy, Settings, dict[str, str]],
) -> None:
    """The catalog is derived: forget drains the outbox first, so nothing is missed."""
    privacy, _, who = world
    assert privacy.catalog.count() == 0
    assert privacy.lake.outbox_files()
    outcome = privacy.forget(who["author"])
    assert outcome.journal.objects and not privacy.lake.outbox_files()
    assert privacy.catalog.count() > 0


def test_a_lost_outbox_record_is_repaired_by_reconcile_before_the_request(
    world: tuple[Privacy, Settings, dict[str, str]],
) -> None:
    from socialsuggest.catalog import reconcile

    privacy, _, who = world
    subject = who["author"]
    for key in privacy.lake.outbox_files():  # as if every outbox record had been lost
        privacy.lake.drop_outbox(key)
    assert privacy.catalog.find_subject(subject) == []
    report = reconcile(privacy.lake, privacy.catalog)
    assert len(report.missing) == report.lake_objects > 0
    assert privacy.catalog.find_subject(subject)
    assert reconcile(privacy.lake, privacy.catalog, repair=False).in_sync
    assert privacy.forget(subject).journal.verification["passed"]


# ---- crash safety -------------------------------------------------------------------------
def _cli_env(settings: Settings, catalog_settings: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SOCIALSUGGEST_"))}
    env["SOCIALSUGGEST_HOME"] = str(settings.home)
    env["MLFLOW_TRACKING_URI"] = "http://127.0.0.1:9"  # nothing listens: models only queued
    for name, value in catalog_settings.items():
        env[f"SOCIALSUGGEST_{name.upper()}"] = str(value)
    return env


CRASH_POINTS = ["planned:1", "writing:1", "writing:4", "written:3", "flagged:1"]


# Every crash point on SQLite; on Elasticsearch the two that leave catalog writes half
# done (resume logic is backend-independent; each case costs three CLI processes).
@pytest.mark.parametrize(
    ("catalog_settings", "crash_at"),
    [("sqlite", point) for point in CRASH_POINTS]
    + [
        pytest.param("elasticsearch", point, marks=pytest.mark.services)
        for point in ("writing:4", "flagged:1")
    ],
    indirect=["catalog_settings"],
)
def test_a_request_killed_at_any_step_resumes_and_finishes(
    world: tuple[Privacy, Settings, dict[str, str]],
    catalog_settings: dict[str, Any],
    crash_at: str,
) -> None:
    privacy, settings, who = world
    subject = who["author"]
    before = _rows(privacy.lake)
    env = _cli_env(settings, catalog_settings)
    command = [sys.executable, "-m", "socialsuggest.cli", "privacy", "forget",
               "--subject", subject, "--reason", "crash test"]  # fmt: skip
    killed = subprocess.run(
        command, env={**env, "SOCIALSUGGEST_PRIVACY_CRASH_AT": crash_at},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    unfinished = privacy.journals.all()
    assert len(unfinished) == 1 and not unfinished[0].done

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads(resumed.stdout)
    assert summary["resumed"] and summary["status"] == "done" and summary["attempts"] == 2

    removed = _assert_erased(before, privacy.lake, subject)
    journal = privacy.journals.all()[0]
    assert journal.rows_removed == removed  # counted once, even for the interrupted object
    assert journal.verification["passed"]
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert json.loads(again.stdout)["already_done"] is True


# ---- retention and export -------------------------------------------------------------
def test_purge_removes_objects_older_than_the_window_and_audits_it(
    world: tuple[Privacy, Settings, dict[str, str]],
) -> None:
    privacy, _, _ = world
    sync_outbox(privacy.lake, privacy.catalog)
    as_of = date(2026, 11, 1)  # the sample's last day
    files = {z: privacy.lake.files(z) for z in PERSONAL_ZONES}
    cutoff = date(2026, 10, 27)
    old = [p for parts in files.values() for p in parts if p.dt < cutoff]
    young = [p for parts in files.values() for p in parts if p.dt >= cutoff]
    assert old and young
    old_rows = sum(privacy.lake.num_rows(p.key) for p in old)

    outcome = privacy.purge(older_than_days=5, as_of=as_of)

    journal = outcome.journal
    assert journal.done and journal.kind == "retention"
    assert journal.rows_removed == old_rows and len(journal.objects) == len(old)
    assert journal.verification["passed"]
    remaining = {p.key for z in PERSONAL_ZONES for p in privacy.lake.files(z)}
    assert remaining == {p.key for p in young}
    assert privacy.catalog.count(Query(dt_before=cutoff)) == 0
    assert privacy.catalog.count() == len(young)


def test_export_lists_every_record_held_about_the_subject(
    world: tuple[Privacy, Settings, dict[str, str]], tmp_path: Path
) -> None:
    privacy, _, who = world
    subject = who["author"]
    before = _rows(privacy.lake)
    owned = {d: [r for r in rows if _mentions(r, subject)] for d, rows in before.items()}
    result = privacy.export(subject, tmp_path / "out" / "export.json")
    document = json.loads((tmp_path / "out" / "export.json").read_text())
    counts = Counter(f"{r['zone']}/{r['dataset']}" for r in document["records"])
    assert counts == Counter({d: len(rows) for d, rows in owned.items() if rows})
    assert result["records"] == sum(counts.values())
    assert all(_mentions(r["record"], subject) for r in document["records"])


# ---- the CLI ---------------------------------------------------------------------------
def test_cli_forget_verify_export_requests_purge_and_catalog(
    world: tuple[Privacy, Settings, dict[str, str]],
    catalog_settings: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from socialsuggest.cli.main import app

    _, settings, who = world
    for name, value in _cli_env(settings, catalog_settings).items():
        if name.startswith(("SOCIALSUGGEST_", "MLFLOW_")):
            monkeypatch.setenv(name, value)
    runner = CliRunner()

    status = runner.invoke(app, ["catalog", "status"])
    assert status.exit_code == 0 and json.loads(status.stdout)["outbox_files_pending"] > 0
    synced = runner.invoke(app, ["catalog", "sync"])
    assert json.loads(synced.stdout)["upserted"] > 0
    assert runner.invoke(app, ["catalog", "reconcile", "--check"]).exit_code == 0

    forget = runner.invoke(app, ["privacy", "forget", "--subject", who["author"]])
    assert forget.exit_code == 0, forget.output
    assert json.loads(forget.stdout)["verification_passed"] is True
    verify = runner.invoke(app, ["privacy", "verify", "--subject", who["author"], "--full"])
    assert verify.exit_code == 0 and json.loads(verify.stdout)["rows_found"] == 0
    # a subject still present fails verification with exit 1
    held = runner.invoke(app, ["privacy", "verify", "--subject", who["other"]])
    assert held.exit_code == 1 and json.loads(held.stdout)["catalog_hits"] > 0
    exported = runner.invoke(
        app, ["privacy", "export", "--subject", who["other"], "--out", str(tmp_path / "e.json")]
    )
    assert exported.exit_code == 0 and json.loads(exported.stdout)["records"] > 0
    listed = json.loads(runner.invoke(app, ["privacy", "requests"]).stdout)
    assert [r["kind"] for r in listed] == ["erasure"]
    assert who["author"] not in json.dumps(listed)

    bad = runner.invoke(app, ["privacy", "purge", "--older-than", "six months"])
    assert bad.exit_code == 2 and "older-than" in bad.output
    empty = runner.invoke(app, ["privacy", "forget", "--subject", "  "])
    assert empty.exit_code == 2 and "subject" in empty.output
    purged = runner.invoke(app, ["privacy", "purge", "--older-than", "3650d"])
    assert purged.exit_code == 0 and json.loads(purged.stdout)["objects"] == 0


def test_the_ingested_day_is_stamped_with_its_retention_date(
    world: tuple[Privacy, Settings, dict[str, str]],
) -> None:
    privacy, settings, _ = world
    sync_outbox(privacy.lake, privacy.catalog)
    for doc in privacy.catalog.iter_all():
        assert doc.retention_until is not None
        expected = date.fromisoformat(doc.dt) + timedelta(days=settings.retention_days)
        assert doc.retention_until == expected.isoformat()


def test_replaying_an_old_source_does_not_resurrect_an_erased_subject(
    world: tuple[Privacy, Settings, dict[str, str]],
    small_sample: tuple[Path, Manifest],
) -> None:
    from socialsuggest.privacy import PrivacyKeyMismatchError, Tombstones, erased_subjects

    privacy, settings, who = world
    subject = who["author"]
    assert erased_subjects(settings, privacy.lake) is None  # no request yet: no filter
    privacy.forget(subject)
    erased = erased_subjects(settings, privacy.lake)
    assert erased is not None
    report = ingest_paths(privacy.lake, [small_sample[0]], erased=erased)
    assert report.suppressed > 0 and report.written_total == 0 and report.reconciles()
    assert privacy.verify(subject, full=True)["passed"]
    # an event after the request is new data: it is kept (a new request would erase it)
    later = ingest_events(privacy.lake, [{
        "event_type": "message", "message_id": "after-1", "org_id": "org-after",
        "network": "twitter", "message_type": "mention", "author_id": subject,
        "text": "written after the request", "created_at": "2099-01-01T00:00:00Z",
    }], erased=erased)  # fmt: skip
    assert (later.suppressed, later.written_total) in ((0, 1), (0, 0))
    # a different key cannot recognise the erased: ingest refuses rather than resurrect
    with pytest.raises(PrivacyKeyMismatchError, match="privacy_key"):
        Tombstones(privacy.lake, b"another key").hit(["x"], None)

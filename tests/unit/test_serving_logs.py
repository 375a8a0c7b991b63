"""Serving request and feedback logs on a real lake (LocalStorage on a tmp dir)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from socialsuggest.lake import Lake, LocalStorage
from socialsuggest.lake.personal import erase, subjects_in
from socialsuggest.lake.storage import ObjectInfo
from socialsuggest.registry import Registry, free_port
from socialsuggest.serving import RequestLog
from socialsuggest.serving.app import create_app
from socialsuggest.serving.logs import FEEDBACK_SCHEMA, TAG_REQUESTS_SCHEMA

WHEN = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
SECRET_TEXT = "my card number is 4111 and I live at 12 Baker Street"


@pytest.fixture
def lake(tmp_path: Any) -> Lake:
    return Lake(LocalStorage(tmp_path / "lake"), retention_days=30)


def _request(log: RequestLog, i: int, org: str = "acme", **extra: Any) -> bool:
    fields: dict[str, Any] = {
        "request_id": f"req-{i}",
        "org": org,
        "text": f"message {i}",
        "network": "twitter",
        "message_type": "mention",
        "k": 2,
        "model_version": 7,
        "suggestions": [
            {"tag": "bread", "score": 0.9, "source": "model"},
            {"tag": "flour", "score": 0.4, "source": "recent"},
        ],
        "latency_ms": 1.5,
        "received_at": WHEN,
        **extra,
    }
    return log.log_tag_request(**fields)


def _rows(lake: Lake, dataset: str) -> list[dict[str, Any]]:
    files = lake.files("logs", dataset)
    return lake.read([f.key for f in files]).to_pylist() if files else []


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_rows_flush_when_a_buffer_reaches_flush_rows(lake: Lake) -> None:
    log = RequestLog(lake, flush_rows=3, flush_seconds=3600)  # no flusher: the caller writes
    _request(log, 0)
    _request(log, 1)
    _request(log, 0, org="globex")  # another partition: its own buffer
    assert lake.files("logs") == [] and log.pending_rows == 3
    _request(log, 2)  # acme's buffer is full: written; globex's waits
    assert [(f.org, lake.num_rows(f.key)) for f in lake.files("logs")] == [("acme", 3)]
    assert (log.written_rows, log.pending_rows) == (3, 1)

    started = RequestLog(lake, flush_rows=2, flush_seconds=3600)
    started.start()  # with the flusher running, a full buffer wakes it (no I/O in the request)
    try:
        _request(started, 10, org="initech")
        _request(started, 11, org="initech")
        _wait(lambda: started.written_rows == 2)
        assert [f.org for f in lake.files("logs", "tag_requests", orgs=["initech"])] == ["initech"]
    finally:
        started.close()


def test_rows_flush_every_flush_seconds(lake: Lake) -> None:
    log = RequestLog(lake, flush_rows=1000, flush_seconds=0.2)
    log.start()
    try:
        _request(log, 0)
        log.log_feedback(request_id="req-0", org="acme", accepted=["bread"], received_at=WHEN)
        _wait(lambda: log.written_rows == 2)
        assert len(_rows(lake, "tag_requests")) == 1 and len(_rows(lake, "feedback")) == 1
    finally:
        log.close()


def test_close_writes_what_is_buffered_and_the_context_manager_closes(lake: Lake) -> None:
    log = RequestLog(lake, flush_rows=1000, flush_seconds=3600)
    with log:
        for i in range(5):
            _request(log, i)
        assert lake.files("logs") == []
    assert [r["request_id"] for r in _rows(lake, "tag_requests")] == [f"req-{i}" for i in range(5)]
    assert log.stats().pending_rows == 0 and log.stats().written_rows == 5


def test_rows_land_in_their_partition_with_the_declared_schema(lake: Lake) -> None:
    log = RequestLog(lake)
    late_evening = datetime(2026, 3, 5, 1, 30, tzinfo=timezone(timedelta(hours=2)))  # UTC 3-4
    _request(log, 1, author_id="au-1", agent_id="ag-1", received_at=late_evening)
    _request(log, 2)  # neither id given: both null
    log.log_feedback(
        request_id="req-1", org="acme", accepted=["bread"], rejected=["flour"], agent_id="ag-2",
        received_at=WHEN,
    )  # fmt: skip
    log.close()

    (requests_file,) = lake.files("logs", "tag_requests")
    assert requests_file.key.startswith("logs/tag_requests/dt=2026-03-04/org=acme/part-")
    requests = lake.read_file(requests_file.key)
    assert requests.schema.equals(TAG_REQUESTS_SCHEMA, check_metadata=False)
    first, second = requests.to_pylist()
    assert first["received_at"] == datetime(2026, 3, 4, 23, 30, tzinfo=UTC)
    assert (first["author_id"], first["agent_id"], first["text"]) == ("au-1", "ag-1", "message 1")
    assert first["suggestions"][0] == {"tag": "bread", "score": 0.9, "source": "model"}
    assert (first["k"], first["model_version"], first["latency_ms"]) == (2, 7, 1.5)
    assert second["author_id"] is None and second["agent_id"] is None

    (feedback_file,) = lake.files("logs", "feedback")
    assert feedback_file.key.startswith("logs/feedback/dt=2026-03-04/org=acme/")
    feedback = lake.read_file(feedback_file.key)
    assert feedback.schema.equals(FEEDBACK_SCHEMA, check_metadata=False)
    assert feedback.to_pylist()[0]["accepted"] == ["bread"]
    assert feedback.to_pylist()[0]["rejected"] == ["flour"]


def test_files_are_catalogued_with_their_subjects_and_erasable(lake: Lake) -> None:
    log = RequestLog(lake)
    _request(log, 1, author_id="au-1", agent_id="ag-1")
    _request(log, 2, author_id="au-2")
    _request(log, 3, author_id="au-1")
    _request(log, 4)
    log.log_feedback(request_id="req-1", org="acme", agent_id="ag-1", received_at=WHEN)
    log.close()

    records = {r["path"]: r for r in lake.outbox()}
    (requests_file,) = lake.files("logs", "tag_requests")
    (feedback_file,) = lake.files("logs", "feedback")
    record = records[requests_file.key]
    assert record["subject_ids"] == ["ag-1", "au-1", "au-2"]
    assert record["zone"] == "logs" and record["rows"] == 4
    assert record["retention_until"] == "2026-04-03"  # the logs zone holds personal data
    assert records[feedback_file.key]["subject_ids"] == ["ag-1"]

    table = lake.read_file(requests_file.key)
    assert subjects_in(table) == {"au-1", "au-2", "ag-1"}  # what the catalog's reconcile sees
    assert subjects_in(lake.read_file(feedback_file.key)) == {"ag-1"}
    erased = erase(table, "au-1")  # a deletion request removes that author's rows
    assert erased.rows_removed == 2
    assert [r["request_id"] for r in erased.kept.to_pylist()] == ["req-2", "req-4"]


class FailingStorage:
    """LocalStorage whose next ``fail`` writes of data files raise.

    A store outage is a fault we cannot cause for real cheaply in a unit test, so this
    minimal wrapper stands in for it; everything else is the real local storage.
    """

    def __init__(self, inner: LocalStorage, fail: int = 1) -> None:
        self.inner = inner
        self.root = inner.root
        self.fail = fail

    def put(self, key: str, data: bytes, *, create_only: bool = False) -> None:
        if self.fail and key.startswith("logs/"):
            self.fail -= 1
            raise ConnectionError("store unavailable")
        self.inner.put(key, data, create_only=create_only)

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def iter_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.iter_objects(prefix)

    def uri(self, key: str) -> str:
        return self.inner.uri(key)


def test_a_failed_flush_keeps_the_rows_and_the_next_flush_writes_them(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    storage = FailingStorage(LocalStorage(tmp_path / "lake"), fail=1)
    lake = Lake(storage)
    log = RequestLog(lake, flush_rows=1000, flush_seconds=3600)
    _request(log, 0, author_id="au-secret", agent_id="ag-secret", text=SECRET_TEXT)
    _request(log, 1)
    with caplog.at_level(logging.WARNING, logger="socialsuggest.serving.logs"):
        assert log.flush() == 0
    assert lake.files("logs") == [] and not list(lake.outbox())
    assert (log.pending_rows, log.flush_errors, log.written_rows, log.dropped_rows) == (2, 1, 0, 0)
    assert "ConnectionError" in caplog.text and "kept for retry" in caplog.text
    for secret in ("au-secret", "ag-secret", SECRET_TEXT, "req-0", "store unavailable"):
        assert secret not in caplog.text  # no personal data (nor row content) in the log

    _request(log, 2)  # arrives after the failure: written after the retried rows
    assert log.flush() == 3
    assert [r["request_id"] for r in _rows(lake, "tag_requests")] == ["req-0", "req-1", "req-2"]
    assert (log.pending_rows, log.written_rows, log.dropped_rows) == (0, 3, 0)
    (record,) = list(lake.outbox())
    assert record["subject_ids"] == ["ag-secret", "au-secret"]


def test_rows_are_dropped_and_counted_only_beyond_the_hard_cap(tmp_path: Any) -> None:
    storage = FailingStorage(LocalStorage(tmp_path / "lake"), fail=10**9)  # a long outage
    log = RequestLog(Lake(storage), flush_rows=5, flush_seconds=3600, max_pending_rows=5)
    accepted = [_request(log, i) for i in range(7)]  # the 5th fills the buffer: flush fails
    assert accepted == [True] * 5 + [False] * 2
    assert (log.pending_rows, log.dropped_rows, log.flush_errors) == (5, 2, 1)
    storage.fail = 0  # the store is back
    log.close()
    stats = log.stats()
    assert (stats.written_rows, stats.pending_rows, stats.dropped_rows) == (5, 0, 2)


def test_concurrent_logging_loses_nothing(lake: Lake) -> None:
    threads, per_thread = 8, 250
    log = RequestLog(lake, flush_rows=40, flush_seconds=0.05)
    log.start()

    def work(worker: int) -> None:
        for i in range(per_thread):
            org = ("acme", "globex", "initech")[i % 3]
            if i % 2:
                log.log_feedback(request_id=f"w{worker}-{i}", org=org, agent_id=f"ag-{worker}")
            else:
                _request(log, i, org=org, request_id=f"w{worker}-{i}", author_id=f"au-{i}")

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    log.close()
    ids = [r["request_id"] for r in _rows(lake, "tag_requests") + _rows(lake, "feedback")]
    assert len(ids) == len(set(ids)) == threads * per_thread  # none lost, none twice
    assert log.written_rows == threads * per_thread
    assert (log.pending_rows, log.dropped_rows, log.flush_errors) == (0, 0, 0)
    catalogued = sum(int(r["rows"]) for r in lake.outbox() if r["zone"] == "logs")
    assert catalogued == threads * per_thread


@pytest.fixture
def unreachable_registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    """A real Registry whose tracking server is down: fails fast, the app still starts."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    return Registry(f"http://127.0.0.1:{free_port()}")


def test_feedback_endpoint_logs_to_the_lake(lake: Lake, unreachable_registry: Registry) -> None:
    log = RequestLog(lake, flush_rows=1000, flush_seconds=3600)
    app = create_app(unreachable_registry, poll_seconds=3600, request_log=log)
    url = "/v1/orgs/acme/feedback"
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 503  # no registry: not ready, but up
        body = {"request_id": "r-1", "accepted": ["bread"], "rejected": ["flour"], "agent_id": "a7"}
        response = client.post(url, json=body)
        assert response.status_code == 202 and response.json() == {"status": "accepted"}
        assert client.post(url, json={"request_id": "r-2"}).status_code == 202  # lists optional

        bad_org = client.post("/v1/orgs/Bad Org!/feedback", json={"request_id": "r-3"})
        assert bad_org.status_code == 400 and "not a valid org id" in bad_org.json()["detail"]
        missing = client.post(url, json={"accepted": ["bread"]})
        assert missing.status_code == 422
        assert missing.json()["errors"][0]["field"] == "request_id"
        assert client.post(url, json={"request_id": "r-4", "extra": 1}).status_code == 422
        too_long = client.post(url, json={"request_id": "r-5", "agent_id": "x" * 201})
        assert too_long.status_code == 422
        # no model is loaded: a suggestion is refused and nothing is logged for it
        suggest = client.post("/v1/orgs/acme/tags:suggest", json={"text": "hi", "author_id": "u"})
        assert suggest.status_code == 404
        assert lake.files("logs") == []  # buffered until shutdown
    rows = _rows(lake, "feedback")
    assert [(r["request_id"], r["agent_id"], r["accepted"], r["rejected"]) for r in rows] == [
        ("r-1", "a7", ["bread"], ["flour"]),
        ("r-2", None, [], []),
    ]
    assert rows[0]["org_id"] == "acme"
    assert abs(datetime.now(UTC) - rows[0]["received_at"]) < timedelta(minutes=5)
    assert lake.files("logs", "tag_requests") == []
    assert [r["subject_ids"] for r in lake.outbox()] == [["a7"]]


def test_feedback_without_a_request_log_is_refused(unreachable_registry: Registry) -> None:
    with TestClient(create_app(unreachable_registry, poll_seconds=3600)) as client:
        response = client.post("/v1/orgs/acme/feedback", json={"request_id": "r-1"})
    assert response.status_code == 503 and "no request log" in response.json()["detail"]


def test_arrow_schemas_mark_only_the_ids_as_personal() -> None:
    from socialsuggest.lake.personal import layout

    assert layout(TAG_REQUESTS_SCHEMA).direct == ("author_id", "agent_id")
    assert layout(FEEDBACK_SCHEMA).direct == ("agent_id",)
    assert not layout(TAG_REQUESTS_SCHEMA).nested and not layout(FEEDBACK_SCHEMA).lists
    assert pa.types.is_timestamp(TAG_REQUESTS_SCHEMA.field("received_at").type)

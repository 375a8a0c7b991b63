"""Serving request and feedback logs, written to the lake's ``logs`` zone.

Every suggestion the API serves and every piece of feedback it receives becomes a
row of ``logs/tag_requests`` or ``logs/feedback`` (partitioned ``dt=/org=`` like the
rest of the lake). Going through :meth:`Lake.write` is the point: each file is
written atomically, gets a retention date and a catalog record listing the data
subjects it holds, so a deletion request finds and rewrites it like any raw file.

Rows are buffered per ``(dataset, dt, org)`` and written as one Parquet file when a
buffer reaches ``flush_rows``, every ``flush_seconds`` (a background thread) and on
:meth:`RequestLog.close`. Request threads only append under a lock; all I/O happens
in the flusher (or in whoever calls :meth:`flush`), so a slow or failing store never
slows a request down.

A failed flush loses nothing: its rows go back to the buffer and the next flush
retries them. Rows are dropped (and counted) only when the buffer would outgrow
``max_pending_rows``, which bounds memory during a long store outage. Delivery is
at least once: if a data file was stored but the call still failed, the retry
writes those rows again (``request_id`` identifies duplicates).

Personal data (``author_id``, ``agent_id``, the message text) goes to the lake
only: warnings name the dataset, partition, row count and error type, never a row.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from socialsuggest.lake import Lake

log = logging.getLogger(__name__)

ZONE = "logs"
TAG_REQUESTS = "tag_requests"
FEEDBACK = "feedback"
SHADOW = "shadow_predictions"  # a challenger's suggestions in shadow mode: never shown

_TS = pa.timestamp("us", tz="UTC")

TAG_REQUESTS_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("org_id", pa.string(), nullable=False),
        pa.field("received_at", _TS, nullable=False),
        # personal: the author of the message being tagged (optional in the request)
        pa.field("author_id", pa.string()),
        # personal: the user of the customer's tool who asked (optional in the request)
        pa.field("agent_id", pa.string()),
        pa.field("text", pa.string(), nullable=False),
        pa.field("network", pa.string(), nullable=False),
        pa.field("message_type", pa.string(), nullable=False),
        pa.field("k", pa.int32(), nullable=False),
        pa.field("model_version", pa.int64(), nullable=False),
        pa.field(
            "suggestions",
            pa.list_(
                pa.struct(
                    [
                        pa.field("tag", pa.string()),
                        pa.field("score", pa.float64()),
                        pa.field("source", pa.string()),
                    ]
                )
            ),
            nullable=False,
        ),
        pa.field("latency_ms", pa.float64(), nullable=False),
    ]
)

FEEDBACK_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("org_id", pa.string(), nullable=False),
        pa.field("received_at", _TS, nullable=False),
        pa.field("agent_id", pa.string()),  # personal: who accepted / rejected
        pa.field("accepted", pa.list_(pa.string()), nullable=False),
        pa.field("rejected", pa.list_(pa.string()), nullable=False),
    ]
)

# Shadow predictions hold no text and no subject: joined to the served request (and its
# feedback) by request_id, so erasing the request's row leaves nothing personal here.
SHADOW_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("org_id", pa.string(), nullable=False),
        pa.field("received_at", _TS, nullable=False),
        pa.field("champion_version", pa.int64(), nullable=False),
        pa.field("challenger_version", pa.int64(), nullable=False),
        TAG_REQUESTS_SCHEMA.field("suggestions"),
        pa.field("latency_ms", pa.float64(), nullable=False),
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    TAG_REQUESTS: TAG_REQUESTS_SCHEMA,
    FEEDBACK: FEEDBACK_SCHEMA,
    SHADOW: SHADOW_SCHEMA,
}
#: Columns holding a person's identifier (what ``lake.personal`` recognises too).
SUBJECT_COLUMNS = ("author_id", "agent_id")

PartitionKey = tuple[str, date, str]  # (dataset, dt, org)


@dataclass(frozen=True)
class LogStats:
    written_rows: int
    pending_rows: int
    dropped_rows: int
    flush_errors: int
    files_written: int


def _utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("received_at: must be timezone-aware")
    return moment.astimezone(UTC)


def _optional_id(value: str | None) -> str | None:
    return str(value) if value else None


def _suggestion_rows(suggestions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Suggestions as the logs store them (served and shadow ones alike)."""
    return [
        {"tag": str(s["tag"]), "score": float(s["score"]), "source": str(s["source"])}
        for s in suggestions
    ]


def subject_ids(rows: Iterable[Mapping[str, Any]]) -> set[str]:
    """Distinct non-null person identifiers of some log rows."""
    return {str(row[c]) for row in rows for c in SUBJECT_COLUMNS if row.get(c)}


class RequestLog:
    """Thread-safe buffered writer of serving logs into the lake.

    Give it a :class:`Lake` of its own: flushes batch their catalog records with
    :meth:`Lake.outbox_batch`, which is per-instance state.
    """

    def __init__(
        self,
        lake: Lake,
        *,
        flush_rows: int = 1000,
        flush_seconds: float = 10.0,
        max_pending_rows: int = 100_000,
    ) -> None:
        if flush_rows < 1 or flush_seconds <= 0 or max_pending_rows < flush_rows:
            raise ValueError(
                "flush_rows >= 1, flush_seconds > 0 and max_pending_rows >= flush_rows required"
            )
        self.lake = lake
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_pending_rows = max_pending_rows
        self._buffers: dict[PartitionKey, list[dict[str, Any]]] = {}
        self._pending = 0
        self._lock = threading.Lock()  # guards buffers and counters
        self._flush_lock = threading.Lock()  # one flush at a time: no row written twice
        self._wake = threading.Event()  # a buffer is full: flush it soon
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_after = 0.0  # monotonic: size-triggered flushes wait after a failure
        self._last_drop_warning = -float("inf")
        self.written_rows = 0
        self.dropped_rows = 0
        self.flush_errors = 0
        self.files_written = 0

    # ---- logging (request threads) ---------------------------------------------
    def log_tag_request(
        self,
        *,
        request_id: str,
        org: str,
        text: str,
        network: str,
        message_type: str,
        k: int,
        model_version: int,
        suggestions: Iterable[Mapping[str, Any]],
        latency_ms: float,
        author_id: str | None = None,
        agent_id: str | None = None,
        received_at: datetime | None = None,
    ) -> bool:
        """Buffer one served suggestion; False if it was dropped (buffer at its cap)."""
        moment = _utc(received_at)
        row = {
            "request_id": str(request_id),
            "org_id": str(org),
            "received_at": moment,
            "author_id": _optional_id(author_id),
            "agent_id": _optional_id(agent_id),
            "text": str(text),
            "network": str(network),
            "message_type": str(message_type),
            "k": int(k),
            "model_version": int(model_version),
            "suggestions": _suggestion_rows(suggestions),
            "latency_ms": float(latency_ms),
        }
        return self._append((TAG_REQUESTS, moment.date(), str(org)), row)

    def log_feedback(
        self,
        *,
        request_id: str,
        org: str,
        accepted: Iterable[str] = (),
        rejected: Iterable[str] = (),
        agent_id: str | None = None,
        received_at: datetime | None = None,
    ) -> bool:
        """Buffer one feedback; False if it was dropped (buffer at its cap)."""
        moment = _utc(received_at)
        row = {
            "request_id": str(request_id),
            "org_id": str(org),
            "received_at": moment,
            "agent_id": _optional_id(agent_id),
            "accepted": [str(t) for t in accepted],
            "rejected": [str(t) for t in rejected],
        }
        return self._append((FEEDBACK, moment.date(), str(org)), row)

    def log_shadow(
        self,
        *,
        request_id: str,
        org: str,
        champion_version: int,
        challenger_version: int,
        suggestions: Iterable[Mapping[str, Any]],
        latency_ms: float,
        received_at: datetime | None = None,
    ) -> bool:
        """Buffer what a shadow challenger would have suggested for a served request."""
        moment = _utc(received_at)
        row = {
            "request_id": str(request_id),
            "org_id": str(org),
            "received_at": moment,
            "champion_version": int(champion_version),
            "challenger_version": int(challenger_version),
            "suggestions": _suggestion_rows(suggestions),
            "latency_ms": float(latency_ms),
        }
        return self._append((SHADOW, moment.date(), str(org)), row)

    def _append(self, key: PartitionKey, row: dict[str, Any]) -> bool:
        with self._lock:
            if self._pending >= self.max_pending_rows:
                self.dropped_rows += 1
                self._warn_dropping()
                return False
            buffer = self._buffers.setdefault(key, [])
            buffer.append(row)
            self._pending += 1
            full = len(buffer) >= self.flush_rows
        if full:
            if self._thread is not None:
                self._wake.set()  # the flusher writes it: the request does no I/O
            elif time.monotonic() >= self._retry_after:
                self.flush(full_only=True)  # no flusher running: the caller writes
        return True

    def _warn_dropping(self) -> None:
        """At most one warning per flush interval while rows are being dropped."""
        now = time.monotonic()
        if now - self._last_drop_warning >= self.flush_seconds:
            self._last_drop_warning = now
            log.warning(
                "request log full (%d rows pending): %d rows dropped so far",
                self._pending,
                self.dropped_rows,
            )

    # ---- counters --------------------------------------------------------------
    @property
    def pending_rows(self) -> int:
        return self._pending

    def stats(self) -> LogStats:
        with self._lock:
            return LogStats(
                written_rows=self.written_rows,
                pending_rows=self._pending,
                dropped_rows=self.dropped_rows,
                flush_errors=self.flush_errors,
                files_written=self.files_written,
            )

    # ---- flushing --------------------------------------------------------------
    def flush(self, *, full_only: bool = False) -> int:
        """Write buffered rows (only full buffers if asked); return the rows written.

        On a failure the unwritten rows go back to their buffers for the next flush,
        the error is counted and logged, and this returns normally.
        """
        with self._flush_lock:
            batches = self._take(full_only)
            written = 0
            unwritten: list[tuple[PartitionKey, list[dict[str, Any]]]] = []
            try:
                with self.lake.outbox_batch():
                    for index, (key, rows) in enumerate(batches):
                        table = self._table(key, rows)
                        if table is None:
                            continue
                        try:
                            self.lake.write(ZONE, key[0], key[1], key[2], table, subject_ids(rows))
                        except Exception as exc:
                            self._failed(key, len(rows), exc)
                            unwritten = batches[index:]  # the store is likely down: stop
                            break
                        written += len(rows)
                        with self._lock:
                            self.written_rows += len(rows)
                            self.files_written += 1
            except Exception as exc:
                # The data files exist but their catalog records could not be written;
                # the catalog's reconcile (Lake.describe) picks such files up.
                with self._lock:
                    self.flush_errors += 1
                log.warning("request log: catalog outbox write failed: %s", type(exc).__name__)
            if unwritten:
                self._restore(unwritten)
            return written

    def _take(self, full_only: bool) -> list[tuple[PartitionKey, list[dict[str, Any]]]]:
        with self._lock:
            keys = [
                key
                for key, rows in self._buffers.items()
                if rows and (not full_only or len(rows) >= self.flush_rows)
            ]
            taken = [(key, self._buffers.pop(key)) for key in keys]
            self._pending -= sum(len(rows) for _, rows in taken)
            return taken

    def _table(self, key: PartitionKey, rows: list[dict[str, Any]]) -> pa.Table | None:
        """The rows as Arrow; None (rows dropped) if they do not fit the schema.

        The typed ``log_*`` methods make this unreachable in practice; the guard keeps
        one malformed row from blocking every later flush by failing forever.
        """
        try:
            return pa.Table.from_pylist(rows, schema=SCHEMAS[key[0]])
        except Exception as exc:  # whatever the cause: never retried, never silently lost
            with self._lock:
                self.flush_errors += 1
                self.dropped_rows += len(rows)
            log.error(
                "request log: %d %s rows (dt=%s org=%s) do not fit the schema, dropped: %s",
                len(rows), key[0], key[1].isoformat(), key[2], type(exc).__name__,
            )  # fmt: skip
            return None

    def _failed(self, key: PartitionKey, rows: int, exc: Exception) -> None:
        dataset, dt, org = key
        with self._lock:
            self.flush_errors += 1
        self._retry_after = time.monotonic() + self.flush_seconds
        log.warning(
            "request log: writing %d %s rows (dt=%s org=%s) failed: %s; kept for retry",
            rows,
            dataset,
            dt.isoformat(),
            org,
            type(exc).__name__,
        )

    def _restore(self, batches: list[tuple[PartitionKey, list[dict[str, Any]]]]) -> None:
        """Put unwritten rows back in front of newer ones, within the hard cap."""
        dropped = 0
        with self._lock:
            for key, rows in batches:
                room = self.max_pending_rows - self._pending
                if room < len(rows):  # drop the oldest: newer rows are more useful
                    dropped += len(rows) - max(room, 0)
                    rows = rows[len(rows) - max(room, 0) :]
                if not rows:
                    continue
                self._buffers[key] = rows + self._buffers.get(key, [])
                self._pending += len(rows)
            self.dropped_rows += dropped
            if dropped:
                self._warn_dropping()

    # ---- background flusher ----------------------------------------------------
    def start(self) -> None:
        """Start the background flusher (idempotent; again after :meth:`close` too)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_timed = time.monotonic() + self.flush_seconds
        while not self._stop.is_set():
            self._wake.wait(max(0.0, next_timed - time.monotonic()))
            if self._stop.is_set():
                return
            try:
                now = time.monotonic()
                if now >= next_timed:
                    self._wake.clear()
                    next_timed = now + self.flush_seconds
                    self.flush()
                elif self._wake.is_set():
                    self._wake.clear()
                    if now >= self._retry_after:  # no retry storm while the store is down
                        self.flush(full_only=True)
            except Exception as exc:  # never let the flusher die
                log.warning("request log flusher: %s", type(exc).__name__)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the flusher and write everything still buffered."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
        self._wake.clear()
        self.flush()
        if self._pending:
            log.warning("request log closed with %d rows not written", self._pending)

    def __enter__(self) -> RequestLog:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

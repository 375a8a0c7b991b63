"""Deletion requests, retention purge, verification and export, driven by the catalog.

Why catalog-driven: the catalog answers "which objects hold this person?" by index,
so a request reads and rewrites only those objects and its cost grows with the
person's data, not with the lake (``benchmarks/privacy_forget.py`` measures both).

How a deletion stays correct under crashes: see :mod:`.journal`. The order is

1. drain the outbox into the catalog (so every written object is findable),
2. plan: the catalog's objects for the subject go into the journal,
3. per object: rewrite without the subject (copy-on-write + atomic replace; an
   object left empty is deleted), update the catalog, record the outcome (the
   journal is saved in batches); the catalog is queried again until it returns
   nothing new (writes that landed meanwhile),
4. queue the affected orgs for retraining and flag their registered models as
   trained on erased data,
5. verify (catalog, rewritten objects, their partitions; or the whole lake) and
   finish the audit record.

A resumed request re-inspects every object not recorded as finished: if the
subject is gone and the checksum changed, the rewrite happened before the crash and
only the catalog update is repeated (:meth:`Privacy._rewrite`). Concurrent writers are fine for
ingest (new part files are found by the re-query); a preprocessing run that read
raw data before the rewrite could write the subject back into ``processed``, which
verification would catch; the Airflow DAGs serialise the two.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from socialsuggest.catalog import Catalog, Query, sync_outbox
from socialsuggest.lake import PERSONAL_ZONES, Lake, LakeObject
from socialsuggest.lake.personal import count_subject, erase, matching_rows, subjects_in
from socialsuggest.privacy.journal import HASH_IN_ID, Journal, JournalStore, ObjectStep, now
from socialsuggest.privacy.keys import subject_hash
from socialsuggest.privacy.retrain import RetrainQueue
from socialsuggest.privacy.tombstones import Tombstones

Progress = Callable[[str], None]
#: Flags a family's registered models of some orgs as trained on erased data;
#: returns "name/version" of every version flagged. Given by the caller (registry).
ModelFlagger = Callable[[list[str], str, str], list[str]]
TRAINING_ZONES = ("raw", "processed")  # data models are trained on
_MAX_ROUNDS = 5  # catalog re-queries for objects written while a request ran


class PrivacyError(RuntimeError):
    """A request could not finish; its journal says where it stopped."""


@dataclass
class Outcome:
    """What a request call did: the journal plus whether it was already done."""

    journal: Journal
    already_done: bool = False
    resumed: bool = False

    def summary(self) -> dict[str, Any]:
        return {**self.journal.summary(), "already_done": self.already_done,
                "resumed": self.resumed}  # fmt: skip


@dataclass
class Privacy:
    """The privacy operations of one lake + catalog (the CLI, DAGs and tests use this)."""

    lake: Lake
    catalog: Catalog
    key: bytes
    flag_models: ModelFlagger | None = None
    progress: Progress | None = None
    journals: JournalStore = field(init=False)
    retrain: RetrainQueue = field(init=False)
    tombstones: Tombstones = field(init=False)

    def __post_init__(self) -> None:
        self.journals = JournalStore(self.lake)
        self.retrain = RetrainQueue(self.lake)
        self.tombstones = Tombstones(self.lake, self.key)

    # ---- deletion request ------------------------------------------------------------
    def forget(self, subject_id: str, *, reason: str = "") -> Outcome:
        """Erase a subject everywhere; resume an unfinished request for them if any."""
        subject_id = _checked_subject(subject_id)
        hashed = subject_hash(subject_id, self.key)
        history = self.journals.for_subject(hashed)
        unfinished = [j for j in history if not j.done]
        sync_outbox(self.lake, self.catalog)
        if unfinished:
            journal = unfinished[-1]
            journal.attempts += 1
            self._say(f"resuming {journal.request_id} (attempt {journal.attempts})")
            return Outcome(self._run_erasure(journal, subject_id), resumed=True)
        found = self._plan(subject_id)
        if not found and history:
            self._say(f"already done: {history[-1].request_id} (nothing held about the subject)")
            return Outcome(history[-1], already_done=True)
        journal = Journal(
            request_id=f"era-{_stamp()}-{hashed[:HASH_IN_ID]}",
            kind="erasure",
            reason=reason,
            subject_hash=hashed,
        )
        journal.add(found)
        self.journals.save(journal)
        _checkpoint("planned")
        self._say(f"{journal.request_id}: {len(found)} objects hold the subject")
        return Outcome(self._run_erasure(journal, subject_id))

    def _plan(self, subject_id: str) -> list[ObjectStep]:
        objects = self.catalog.locate(subject_id, PERSONAL_ZONES)
        return [_step(obj) for obj in objects]

    def _run_erasure(self, journal: Journal, subject_id: str) -> Journal:
        if journal.subject_hash is not None and journal.status != "done":
            # from now on ingest drops the subject's past events: a replay can't resurrect
            # them (idempotent, so a resumed request simply writes it again)
            self.tombstones.add(journal.subject_hash, journal.started_at)
        journal.status = "rewriting" if journal.status == "planned" else journal.status
        for _ in range(_MAX_ROUNDS):
            self._rewrite_all(journal, subject_id)
            added = journal.add(self._plan(subject_id))
            if not added:
                break
            self._say(f"{added} more objects hold the subject (written meanwhile)")
            self.journals.save(journal)
        if journal.status == "rewriting":
            orgs = sorted(
                {s.org for s in journal.objects if s.zone in TRAINING_ZONES and s.rows_removed}
            )
            journal.orgs_retrain = orgs
            journal.status = "flagging"
            self.journals.save(journal)
        if journal.status == "flagging":
            self._flag(journal)
            journal.status = "verifying"
            self.journals.save(journal)
            _checkpoint("flagged")
        if journal.status == "verifying":
            sync_outbox(self.lake, self.catalog)  # the rewrites' own records: drain them too
            journal.verification = self._verify(
                subject_id, partitions=_partitions(journal.objects), full=False
            )
            if not journal.verification["passed"]:
                journal.errors.append(f"{now()} verification failed: {journal.verification}")
                self.journals.save(journal)
                raise PrivacyError(
                    f"{journal.request_id}: verification found the subject "
                    f"({journal.verification['rows_found']} rows, "
                    f"{journal.verification['catalog_hits']} catalog hits); re-run to retry"
                )
            journal.status = "done"
            journal.finished_at = now()
            self.journals.save(journal)
            self._say(f"{journal.request_id}: done, {journal.rows_removed} rows removed")
        return journal

    def _rewrite_all(self, journal: Journal, subject_id: str) -> None:
        pending = [step for step in journal.objects if not step.finished]
        saver = _Saver(self.journals, journal, self.catalog)
        for number, step in enumerate(pending, 1):
            self._rewrite(step, subject_id, saver, resumed=journal.attempts > 1)
            saver.tick()
            if self.progress and (number % 50 == 0 or number == len(pending)):
                self._say(f"rewritten {number}/{len(pending)} objects")
        saver.flush()

    def _rewrite(self, step: ObjectStep, subject_id: str, saver: _Saver, *, resumed: bool) -> None:
        """Rewrite one object without the subject.

        The journal is saved in batches (see :class:`_Saver`), not around every object,
        so a crash can lose the record of up to a batch of finished rewrites. Those are
        recognised on resume: the subject is gone and the checksum is no longer the
        planned one, so the rows removed are ``rows_before - rows now`` (exact) and
        only the count of redacted nested values is unknown (``None``). Catalog updates
        are batched the same way and applied before the journal that records them.
        """
        if not self.lake.storage.exists(step.path):
            # deleted by this request before a crash, or by retention meanwhile:
            # either way its rows are gone and nothing holds the subject
            saver.remove(step.path)
            step.state, step.rows_removed, step.rows_after = "gone", step.rows_before, 0
            return
        data = self.lake.storage.get(step.path)
        table = pq.read_table(io.BytesIO(data))
        result = erase(table, subject_id)
        if not result.changed:
            obj = self.lake.describe(step.path)
            saver.upsert(obj)  # correct a document that over-reported
            if resumed and hashlib.sha256(data).hexdigest() != step.sha256_before:
                step.state, step.rows_after, step.sha256_after = "rewritten", obj.rows, obj.sha256
                step.rows_removed, step.values_redacted = step.rows_before - obj.rows, None
            else:
                step.state = "unchanged"
            return
        step.rows_removed, step.values_redacted = result.rows_removed, result.values_redacted
        _checkpoint("writing")
        if result.kept.num_rows == 0:
            self.lake.delete(step.path, outbox=False)  # the saver updates the catalog
            _checkpoint("written")
            saver.remove(step.path)
            step.state, step.rows_after = "deleted", 0
            return
        obj = self.lake.replace(step.path, result.kept, subjects_in(result.kept), outbox=False)
        _checkpoint("written")
        saver.upsert(obj)
        step.state, step.rows_after, step.sha256_after = "rewritten", obj.rows, obj.sha256

    def _flag(self, journal: Journal) -> None:
        if not journal.orgs_retrain:
            journal.models_note = "no training data touched"
            return
        self.retrain.add(journal.orgs_retrain, journal.request_id)
        if self.flag_models is None:
            journal.models_note = "queued for retrain (no registry configured)"
            return
        try:
            journal.models_flagged = self.flag_models(
                journal.orgs_retrain, journal.request_id, journal.started_at
            )
            journal.models_note = "flagged and queued for retrain"
        except Exception as exc:  # the registry is down: the queue still forces a retrain
            journal.models_note = (
                f"queued for retrain; flagging failed ({type(exc).__name__}), "
                "the next cycle flags them"
            )

    # ---- verification ----------------------------------------------------------------
    def verify(self, subject_id: str, *, full: bool = False) -> dict[str, Any]:
        """Prove zero rows remain; recorded in the subject's latest request if any."""
        subject_id = _checked_subject(subject_id)
        sync_outbox(self.lake, self.catalog)
        history = self.journals.for_subject(subject_hash(subject_id, self.key))
        partitions = _partitions(history[-1].objects) if history else set()
        result = self._verify(subject_id, partitions=partitions, full=full)
        if history:
            history[-1].verifications.append(result)
            self.journals.save(history[-1])
            result["request_id"] = history[-1].request_id
        return result

    def _verify(
        self, subject_id: str, *, partitions: set[tuple[str, str, str, str]], full: bool
    ) -> dict[str, Any]:
        started = time.perf_counter()
        keys: set[str] = set()
        if full:
            for zone in PERSONAL_ZONES:
                keys.update(part.key for part in self.lake.files(zone))
        else:
            for zone, dataset, dt, org in sorted(partitions):
                day = date.fromisoformat(dt)
                keys.update(
                    p.key
                    for p in self.lake.files(zone, dataset, dt_from=day, dt_to=day, orgs=[org])
                )
        rows_scanned = rows_found = 0
        holding: list[str] = []
        for key in sorted(keys):
            table = self.lake.read_personal(key)
            found = count_subject(table, subject_id)
            rows_scanned += table.num_rows
            rows_found += found
            if found:
                holding.append(key)
        catalog_hits = self.catalog.count(Query(subject_id=subject_id))
        outbox_hits = sum(
            1
            for key in self.lake.outbox_files()
            if subject_id in json.dumps(self.lake.read_outbox(key))
        )
        return {
            "scope": "full" if full else "partitions",
            "objects_scanned": len(keys),
            "rows_scanned": rows_scanned,
            "rows_found": rows_found,
            "objects_holding": len(holding),
            "catalog_hits": catalog_hits,
            "outbox_hits": outbox_hits,
            "passed": rows_found == 0 and catalog_hits == 0 and outbox_hits == 0,
            "seconds": round(time.perf_counter() - started, 3),
            "at": now(),
        }

    # ---- retention -------------------------------------------------------------------
    def purge(self, *, older_than_days: int, as_of: date | None = None) -> Outcome:
        """Delete personal-data objects whose day is older than the window."""
        if older_than_days < 1:
            raise ValueError(f"older_than: {older_than_days} days must be at least 1")
        as_of = as_of or datetime.now(UTC).date()
        cutoff = as_of - timedelta(days=older_than_days)
        sync_outbox(self.lake, self.catalog)
        unfinished = [j for j in self.journals.all("retention") if not j.done]
        if unfinished:
            journal = unfinished[-1]
            journal.attempts += 1
            self._say(f"resuming {journal.request_id}")
            return Outcome(self._run_purge(journal, cutoff), resumed=True)
        expired = list(self.catalog.search(Query(zones=PERSONAL_ZONES, dt_before=cutoff)))
        journal = Journal(
            request_id=f"ret-{_stamp()}",
            kind="retention",
            reason=f"retention: objects dated before {cutoff} ({older_than_days} days)",
            criteria={
                "older_than_days": older_than_days,
                "cutoff": cutoff.isoformat(),
                "as_of": as_of.isoformat(),
            },
        )
        journal.add([_step(obj) for obj in sorted(expired, key=lambda o: o.path)])
        self.journals.save(journal)
        self._say(f"{journal.request_id}: {len(expired)} objects older than {cutoff}")
        return Outcome(self._run_purge(journal, cutoff))

    def _run_purge(self, journal: Journal, cutoff: date) -> Journal:
        pending = [s for s in journal.objects if not s.finished]
        saver = _Saver(self.journals, journal, self.catalog)
        for number, step in enumerate(pending, 1):
            # rows from the plan: a resumed purge counts a file it deleted before the
            # crash (and whose step was not saved yet) the same as on the first pass
            self.lake.delete(step.path, outbox=False)  # idempotent; the saver updates the catalog
            saver.remove(step.path)
            step.state, step.rows_removed, step.rows_after = "deleted", step.rows_before, 0
            saver.tick()
            if number % 500 == 0:
                self._say(f"purged {number}/{len(pending)} objects")
        saver.flush()
        remaining = self.catalog.count(Query(zones=PERSONAL_ZONES, dt_before=cutoff))
        journal.verification = {
            "scope": "catalog",
            "objects_older_than_cutoff": remaining,
            "files_remaining": sum(self.lake.storage.exists(s.path) for s in journal.objects),
            "at": now(),
        }
        journal.verification["passed"] = (
            remaining == 0 and not journal.verification["files_remaining"]
        )
        journal.status = "done"
        journal.finished_at = now()
        self.journals.save(journal)
        return journal

    # ---- right of access -------------------------------------------------------------
    def export(self, subject_id: str, out: Path) -> dict[str, Any]:
        """Every record held about the subject, in one JSON file at ``out``."""
        subject_id = _checked_subject(subject_id)
        sync_outbox(self.lake, self.catalog)
        records: list[dict[str, Any]] = []
        per_dataset: Counter[str] = Counter()
        for obj in self.catalog.locate(subject_id, PERSONAL_ZONES):
            for row in matching_rows(self.lake.read_file(obj.path), subject_id):
                records.append({"zone": obj.zone, "dataset": obj.dataset, "org": obj.org,
                                "dt": obj.dt, "object": obj.path, "record": row})  # fmt: skip
                per_dataset[f"{obj.zone}/{obj.dataset}"] += 1
        document = {
            "subject_id": subject_id,
            "generated_at": now(),
            "records": records,
            "counts": dict(per_dataset),
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(document, indent=1, default=str, ensure_ascii=False))
        tmp.replace(out)
        return {"path": str(out), "records": len(records), "counts": dict(per_dataset)}

    def requests(self) -> list[Journal]:
        return self.journals.all()

    def _say(self, message: str) -> None:
        if self.progress:
            self.progress(message)


class _Saver:
    """Apply catalog updates and save the journal in batches (at most once a second
    or every 100 objects, and at the end), catalog first: a journal rewritten after
    every object would cost O(objects²) bytes, and Elasticsearch makes every bulk
    call wait for a refresh (up to 1 s)."""

    def __init__(self, store: JournalStore, journal: Journal, catalog: Catalog) -> None:
        self.store, self.journal, self.catalog = store, journal, catalog
        self.upserts: dict[str, LakeObject] = {}
        self.removals: list[str] = []
        self.dirty, self.last = 0, time.monotonic()

    def upsert(self, obj: LakeObject) -> None:
        self.upserts[obj.path] = obj

    def remove(self, path: str) -> None:
        self.upserts.pop(path, None)
        self.removals.append(path)

    def tick(self) -> None:
        self.dirty += 1
        if self.dirty >= 100 or time.monotonic() - self.last >= 1.0:
            self.flush()

    def flush(self) -> None:
        if self.removals:
            self.catalog.remove(self.removals)
        if self.upserts:
            self.catalog.upsert(list(self.upserts.values()))
        self.upserts, self.removals = {}, []
        if self.dirty:
            self.store.save(self.journal)
        self.dirty, self.last = 0, time.monotonic()


def _checked_subject(subject_id: str) -> str:
    value = subject_id.strip() if isinstance(subject_id, str) else ""
    if not value:
        raise ValueError("subject: must be a non-empty subject id")
    if len(value) > 200:
        raise ValueError("subject: longer than 200 characters, not a subject id")
    return value


def _step(obj: LakeObject) -> ObjectStep:
    return ObjectStep(path=obj.path, zone=obj.zone, dataset=obj.dataset, org=obj.org,
                      dt=obj.dt, rows_before=obj.rows, sha256_before=obj.sha256)  # fmt: skip


def _partitions(steps: Iterable[ObjectStep]) -> set[tuple[str, str, str, str]]:
    return {(s.zone, s.dataset, s.dt, s.org) for s in steps}


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


_FAULTS: Counter[str] = Counter()


def _checkpoint(point: str) -> None:
    """Crash-test hook: ``SOCIALSUGGEST_PRIVACY_CRASH_AT=<point>:<n>`` SIGKILLs this
    process the n-th time it passes ``point``, so tests kill a real request at an
    exact step. Unset in every real deployment (a no-op then)."""
    wanted = os.environ.get("SOCIALSUGGEST_PRIVACY_CRASH_AT")
    if not wanted:
        return
    name, _, nth = wanted.partition(":")
    if name != point:
        return
    _FAULTS[point] += 1
    if _FAULTS[point] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)

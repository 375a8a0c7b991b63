"""All orgs trained in one job: a local process pool, or Spark on a cluster.

Both engines run :func:`train_org` per org and return the same results, so the
choice is operational: the pool needs no JVM and suits one machine; Spark's
``groupBy(org).applyInPandas`` spreads thousands of orgs over a cluster's
executors, each group holding one org's examples in memory (orgs are small
compared with executors, which is what makes per-org grouping safe).
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pandas as pd

from socialsuggest.config import Settings
from socialsuggest.lake import Lake, PartitionFile
from socialsuggest.models.tags import TagModelConfig
from socialsuggest.processing.incremental import lake_path
from socialsuggest.processing.spark import HadoopFolder
from socialsuggest.processing.splits import load_examples, load_tag_lifecycle
from socialsuggest.processing.tags import FAMILY
from socialsuggest.training.job import OrgResult, train_org

log = logging.getLogger(__name__)
Engine = Literal["local", "spark"]


def processed_orgs(lake: Lake) -> list[str]:
    return sorted({f.org for f in lake.files("processed", FAMILY)})


def largest_first(files: Iterable[PartitionFile], orgs: Iterable[str]) -> list[str]:
    """``orgs`` in the order a fan-out should start them: the most processed data first.

    An org's fit grows faster than its data, so the largest orgs decide how long a
    fan-out takes. Started last (name order put the 2nd, 4th and 5th largest of the
    1M-message benchmark lake among the last 6 of 100), a large org runs on one core
    while the others have nothing left to do; started first, the small ones fill in
    around it (longest-processing-time-first scheduling). The bytes of an org's
    processed files (``files``: the processed zone's listing) stand in for its fit's
    cost; one without files goes last, where it fails fast. Ties keep name order, so the
    order is the same on every run.
    """
    size: dict[str, int] = {}
    for f in files:
        size[f.org] = size.get(f.org, 0) + f.size
    return sorted(orgs, key=lambda org: (-size.get(org, 0), org))


def _train_from_lake(
    settings: Settings,
    org: str,
    config: TagModelConfig,
    as_of: datetime,
    learner: tuple[str, str] | None = None,
) -> OrgResult:
    """Worker entry point: read one org's data where it is trained."""
    lake = Lake.from_settings(settings)
    try:
        examples = load_examples(lake, org)
        lifecycle = load_tag_lifecycle(lake, org)
    except Exception as exc:
        return OrgResult(org=org, ok=False, error=f"{type(exc).__name__}: {exc}")
    return train_org(org, examples, lifecycle, config, as_of=as_of, learner=learner)


@contextmanager
def plain_main() -> Iterator[None]:
    """While in this block, spawned workers do not re-import the parent's ``__main__``.

    The pool uses spawn because the driver may host a JVM (Spark) and threads that
    forking would copy half-way. But spawn re-runs the parent's main module in every
    worker, and in an Airflow task that is Airflow's own entry point, whose import
    initialises its database layer, which task processes are denied: every worker
    died before training. Workers need only this package, so they are started (at
    submit) with ``__main__`` looking like an interactive session.
    """
    main = sys.modules["__main__"]
    hidden: dict[str, Any] = {
        k: main.__dict__.pop(k) for k in ("__file__", "__spec__") if k in main.__dict__
    }
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(hidden)


def train_orgs_local(
    settings: Settings,
    orgs: Iterable[str],
    config: TagModelConfig,
    *,
    as_of: datetime,
    workers: int | None = None,
    progress: Callable[[OrgResult], None] | None = None,
    learners: Mapping[str, tuple[str, str]] | None = None,
) -> list[OrgResult]:
    """Train ``orgs`` in a process pool, one org per worker; ``learners``: org -> the
    (learner, when chosen) to fit again without comparing (``RetrainPlan.learners``).

    With ``progress`` each result is handed to it as its org finishes and only its
    ``released`` form (no model, no test slice) is kept and returned: the driver holds
    one org's model at a time, however many orgs the batch has. Without it, every
    result is returned whole.
    """
    learners = learners or {}
    orgs = list(orgs)
    if not orgs:
        return []
    workers = max(1, min(workers or multiprocessing.cpu_count(), len(orgs)))
    results: list[OrgResult] = []
    if workers == 1:  # one org (an Airflow task per org) or one core: no pool to pay for
        for org in orgs:
            result = _train_from_lake(settings, org, config, as_of, learners.get(org))
            results.append(_handed(result, progress))
        return results
    orgs = largest_first(Lake.from_settings(settings).files("processed", FAMILY), orgs)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        with plain_main():  # workers are started on demand, at submit
            futures = {
                pool.submit(_train_from_lake, settings, o, config, as_of, learners.get(o)): o
                for o in orgs
            }
        try:
            for future in as_completed(futures):
                # a done future holds its result: dropped here so the org's model goes
                # as soon as the callback is done with it (``as_completed`` keeps none)
                org = futures.pop(future)
                try:
                    result = future.result()
                except Exception as exc:  # the worker process itself died
                    result = OrgResult(org=org, ok=False, error=f"worker failed: {exc!r}")
                results.append(_handed(result, progress))
        except BaseException as exc:
            # ``progress`` (publishing the org) failed, or the task is being stopped: the
            # orgs not started yet would be trained for nothing before the error surfaced
            # (leaving the pool waits for every queued fit); only the running ones finish
            not_started = sum(f.cancel() for f in futures)
            exc.add_note(f"training stopped: {not_started} queued org(s) not started")
            raise
    return sorted(results, key=lambda r: r.org)


#: Where the Spark fan-out's executors leave each org's result for the driver, in the
#: lake (the one storage every executor of a cluster reaches); a run's folder is deleted
#: when the run ends, and one left by a killed driver by the next run a day later.
STAGING_PREFIX = "_staging/fanout"
STAGING_KEPT = timedelta(days=1)


def train_orgs_spark(
    spark: Any,
    lake: Lake,
    orgs: Iterable[str],
    config: TagModelConfig,
    *,
    as_of: datetime,
    progress: Callable[[OrgResult], None] | None = None,
    learners: Mapping[str, tuple[str, str]] | None = None,
) -> list[OrgResult]:
    """``groupBy(org_id).applyInPandas``: one pandas group per org, trained on an executor
    (``learners`` and ``progress`` as in ``train_orgs_local``).

    The executors write each org's pickled result as its own file in the lake, and the
    driver reads them back one at a time, so the driver holds one org's result however
    many orgs the job has. ``collect()`` fetched each task's results (a quarter of the
    orgs, with their models and test slices) as one block into the driver JVM's heap,
    which ran out at 1M messages over 100 orgs (2026-12-06).
    """
    kept = dict(learners or {})  # a plain dict: shipped to the executors with the closure
    wanted = set(orgs)
    files = [f for f in lake.files("processed", FAMILY) if f.org in wanted]
    if not files:
        return []
    lifecycle = load_tag_lifecycle(lake)

    def train_group(group: pd.DataFrame) -> pd.DataFrame:
        org = str(group["org_id"].iloc[0])
        examples = group.drop(columns=SLOT).assign(
            tags=[list(t) if t is not None else [] for t in group["tags"]]
        )
        result = train_org(org, examples, lifecycle, config, as_of=as_of, learner=kept.get(org))
        return pd.DataFrame({"org": [org], "payload": [pickle.dumps(result)]})

    now = datetime.now(UTC)
    staging = HadoopFolder(spark, lake_path(lake, STAGING_PREFIX))
    delete_killed_runs(staging, now - STAGING_KEPT)
    name = run_folder(now)
    run = f"{STAGING_PREFIX}/{name}"
    frame = spark.read.parquet(*(lake_path(lake, f.key) for f in files))
    by_org = _one_org_per_task(spark, frame, largest_first(files, {f.org for f in files}))
    trained = by_org.groupBy(SLOT, "org_id").applyInPandas(
        train_group, "org string, payload binary"
    )
    try:
        # one org per file: a file is the unit the driver reads, so it is one org's size
        trained.write.option("maxRecordsPerFile", 1).parquet(lake_path(lake, run))
        results = []
        for info in lake.storage.iter_objects(run):
            if info.key.endswith(".parquet"):
                for payload in lake.read_file(info.key).column("payload").to_pylist():
                    results.append(_handed(pickle.loads(payload), progress))
    finally:  # the staged results hold messages (test slices): never left behind
        staging.delete(name)
    return sorted(results, key=lambda r: r.org)


#: The column placing each org in its own task (``_one_org_per_task``).
SLOT = "_slot"


def _one_org_per_task(spark: Any, frame: Any, orgs: list[str]) -> Any:
    """``frame`` in ``len(orgs)`` partitions, the i-th holding exactly ``orgs[i]``'s rows.

    One task per org lets the scheduler hand out orgs as cores free up, as the pool
    does (the session's few shuffle partitions made tasks of ~25 orgs each, and the
    last ran alone for minutes); tasks start in partition order, so ``largest_first``
    order starts the largest orgs first. Hashing the org id into that many partitions
    left 37 of 100 empty and put up to 4 orgs in one (the largest org of the 1M-message
    benchmark lake shared its task, the 38th). So each org gets a key that Spark's own
    hash partitioning sends to its partition, and ``groupBy(SLOT, org_id)`` groups
    within those partitions without another shuffle.
    """
    from pyspark.sql import functions as F

    keys = _partition_keys(spark, len(orgs))
    slots = spark.createDataFrame(
        list(zip(orgs, keys, strict=True)), f"org_id string, {SLOT} bigint"
    )
    return frame.join(F.broadcast(slots), "org_id").repartition(len(orgs), SLOT)


def _partition_keys(spark: Any, n: int) -> list[int]:
    """For each partition 0..n-1, the smallest bigint that ``repartition(n, column)``
    sends there, found by Spark itself (``pmod(hash(x), n)`` is its partitioner), so the
    placement cannot drift from the partitioner's hash."""
    from pyspark.sql import functions as F

    found: dict[int, int] = {}
    bound = 16 * n + 64
    while len(found) < n:
        rows = (
            spark.range(bound)
            .select(F.pmod(F.hash("id"), F.lit(n)).alias("p"), "id")
            .groupBy("p")
            .agg(F.min("id").alias("id"))
            .collect()
        )
        found = {int(r["p"]): int(r["id"]) for r in rows}
        bound *= 4
    return [found[p] for p in range(n)]


def delete_killed_runs(staging: HadoopFolder, cutoff: datetime) -> None:
    """Delete the run folders started before ``cutoff``: runs whose driver died before
    its ``finally`` (killed, out of memory).

    A run's start is read from its folder's name (``run_folder``), not from the file
    system: S3 has no folders, and s3a reports every prefix as modified at time 0, which
    would make a run still going look days old. A folder whose name holds no start is
    not ours to judge, and is left."""
    for name in staging.subfolders():
        started = run_started(name)
        if started is not None and started < cutoff:
            staging.delete(name)
            log.warning("fan-out: deleted %s, left by a run that did not finish", name)


def run_folder(now: datetime) -> str:
    """A fan-out run's staging folder name: its start (UTC) and a random suffix."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def run_started(name: str) -> datetime | None:
    """The start written into a ``run_folder`` name, or None for any other name."""
    try:
        return datetime.strptime(name.split("-", 1)[0], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _handed(result: OrgResult, progress: Callable[[OrgResult], None] | None) -> OrgResult:
    """``result`` handed to ``progress``, which owns its model from then on: what a
    fan-out keeps of it (all of it without a callback)."""
    if progress is None:
        return result
    progress(result)
    return result.released()

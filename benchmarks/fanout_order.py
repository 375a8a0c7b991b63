"""What the order and placement of orgs in a training fan-out cost, before and after.

Why: an org's fit grows faster than its data, so the largest orgs decide how long a
fan-out takes. Until 2026-12-07 the pool started orgs in name order (the 2nd, 4th and
5th largest of the 1M x 100 lake among the last 6) and the Spark fan-out hashed org ids
into one partition per org (37 of 100 tasks empty, up to 4 orgs in one). Now both start
the largest first (``fanout.largest_first``) and Spark gives each org a task of its own
(``fanout._one_org_per_task``). The way it was is emulated here by replacing those two
functions (name order; the org id hashed), so both run the same training code.

Per run: the fan-out's seconds, the sum of its orgs' fit seconds (the work, which the
order does not change), their ratio over the cores (1.0 = every core busy to the end)
and the orgs that finished last. Each engine's before/after pair runs back to back,
after first in odd rounds, before first in even ones. No publishing: each result is
dropped as the cycle's publishing would take it.

``--append`` adds runs to those in ``fanout_order.json``; the report then also replays
the last run's per-org fit seconds on 8 to 100 cores in either order (``simulated``).
The processed lake is made once (the first 29 days of ``scale_cycle.py``'s sample,
ingested and preprocessed, untimed) and kept under ``--keep``.
Writes ``benchmarks/reports/fanout_order.md``.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import machine, say, settings_for
from scale_cycle import Point, ensure_sample, sample_files
from socialsuggest.ingest import ingest_paths
from socialsuggest.lake import Lake, PartitionFile
from socialsuggest.models.tags import TagModelConfig
from socialsuggest.processing.spark import get_spark, stop_spark
from socialsuggest.processing.tags import FAMILY, preprocess_tags
from socialsuggest.training import fanout

# bound here: ``run`` replaces the module's own for a before run; the replay reads this
from socialsuggest.training.fanout import SLOT, largest_first, processed_orgs
from socialsuggest.training.job import OrgResult

REPORT = Path(__file__).parent / "reports" / "fanout_order.md"


def processed_lake(point: Point, work: Path) -> Path:
    """The point's processed lake under ``work``, made unless a finished one is kept."""
    home, done = work / "fanout-home", work / "fanout-home" / "processed.ok"
    if done.is_file():
        return home
    settings = settings_for(home)
    ensure_sample(point, work / "sample", settings)
    history, _ = sample_files(work / "sample")
    lake = Lake.from_settings(settings)
    say(f"{point.label}: ingest and preprocess 29 days (untimed, kept in {home})")
    ingest_paths(lake, history, flush_rows=settings.ingest_flush_rows)
    preprocess_tags(get_spark(settings), lake, settings=settings)
    done.write_text(datetime.now(UTC).isoformat())
    return home


def _name_order(files: Any, orgs: Any) -> list[str]:
    return list(orgs)


def _hashed(spark: Any, frame: Any, orgs: list[str]) -> Any:
    from pyspark.sql import functions as F

    return frame.withColumn(SLOT, F.lit(0).cast("bigint")).repartition(len(orgs), "org_id")


def run(engine: str, variant: str, settings: Any, spark: Any) -> dict[str, Any]:
    """One fan-out of every org; ``before`` with the old order and placement."""
    lake = Lake.from_settings(settings)
    orgs = processed_orgs(lake)
    real = fanout.largest_first, fanout._one_org_per_task
    if variant == "before":
        fanout.largest_first, fanout._one_org_per_task = _name_order, _hashed
    finished: list[tuple[str, float]] = []
    started = time.perf_counter()

    def drop(result: OrgResult) -> None:
        finished.append((result.org, time.perf_counter() - started))

    try:
        as_of = datetime.now(UTC)
        if engine == "spark":
            results = fanout.train_orgs_spark(
                spark, lake, orgs, TagModelConfig(), as_of=as_of, progress=drop
            )
        else:
            results = fanout.train_orgs_local(
                settings, orgs, TagModelConfig(), as_of=as_of, progress=drop
            )
    finally:
        fanout.largest_first, fanout._one_org_per_task = real
    seconds = time.perf_counter() - started
    bad = [r.org for r in results if not r.ok]
    if bad:
        raise RuntimeError(f"{engine} {variant}: {len(bad)} orgs failed: {bad[:5]}")
    work = sum(r.seconds for r in results)
    cores = os.cpu_count() or 1
    return {
        "engine": engine,
        "variant": variant,
        "seconds": round(seconds, 1),
        "fit_seconds": round(work, 1),
        "org_seconds": {r.org: round(r.seconds, 2) for r in results},
        "busy": round(work / (cores * seconds), 3),
        "largest": sorted(((r.org, round(r.seconds, 1)) for r in results), key=lambda x: -x[1])[:5],
        # the Spark fan-out hands every org over at the end: only the pool's order shows
        "last": [org for org, _ in finished[-5:]] if engine == "local" else [],
    }


def makespan(seconds: dict[str, float], order: list[str], cores: int) -> float:
    """When the last org ends if each org, in ``order``, starts on the first free core
    (what both engines do: the pool's queue, Spark's tasks in partition order)."""
    free = [0.0] * cores
    for org in order:
        heapq.heapreplace(free, free[0] + seconds[org])
    return max(free)


def simulated(
    run: dict[str, Any], processed: list[PartitionFile], hashed: dict[str, int]
) -> list[str]:
    """The measured orgs' fit seconds scheduled on more cores, in each way of starting
    them.

    On 2 cores a late large org idles one core for part of its fit, a few percent of a
    run; on a cluster's many cores the largest org's fit is most of the run, and
    starting it last adds it whole. This replays the measured fits on k cores: the pool
    before (name order), Spark before (the orgs hashed into partitions: a task fits its
    orgs one after another, tasks start in partition order) and both engines after
    (largest first, one org a task). It leaves out what more cores would change (their
    speed, reading the lake).
    """
    seconds = run["org_seconds"]
    by_name = sorted(seconds)
    by_size = largest_first(processed, seconds)
    tasks: dict[int, float] = {}
    for org in seconds:
        tasks[hashed[org]] = tasks.get(hashed[org], 0.0) + seconds[org]
    task_order = [str(p) for p in sorted(tasks)]
    task_seconds = {str(p): s for p, s in tasks.items()}
    lines = [
        "",
        f"Replayed on more cores: the {len(seconds)} orgs' fit seconds of round "
        f"{run['round']}'s {run['engine']} {run['variant']} run, each org (or Spark task) "
        "started on the first free core; the bound is the larger of the longest fit and "
        f"the fits' sum over the cores. Spark before: {len(tasks)} non-empty tasks of "
        f"{len(seconds)}, up to {max(Counter(hashed[o] for o in seconds).values())} orgs "
        "in one.",
        "",
        "| cores | pool before (name order) s | Spark before (hashed) s | after (largest "
        "first) s | bound s | after / pool before | after / Spark before |",
        "|---|---|---|---|---|---|---|",
    ]
    for cores in (2, 8, 32, 100):
        named, largest = makespan(seconds, by_name, cores), makespan(seconds, by_size, cores)
        spark_before = makespan(task_seconds, task_order, cores)
        bound = max(max(seconds.values()), sum(seconds.values()) / cores)
        lines.append(
            f"| {cores} | {named:.1f} | {spark_before:.1f} | {largest:.1f} | {bound:.1f} | "
            f"{largest / named:.3f} | {largest / spark_before:.3f} |"
        )
    return lines


def hashed_partitions(spark: Any, orgs: list[str]) -> dict[str, int]:
    """Where hashing the org id put each org, as the Spark fan-out did before."""
    frame = spark.createDataFrame([(o,) for o in orgs], "org_id string")
    rows = frame.selectExpr("org_id", f"pmod(hash(org_id), {len(orgs)}) AS p").collect()
    return {r["org_id"]: int(r["p"]) for r in rows}


def render(
    runs: list[dict[str, Any]],
    args: argparse.Namespace,
    processed: list[PartitionFile],
    hashed: dict[str, int],
    commands: list[str],
) -> str:
    lines = [
        "# Fan-out: which org starts first, and where Spark puts it",
        "",
        f"- machine: {machine()}",
        *(f"- command: `{c}`" for c in commands),
        f"- date: {datetime.now(UTC):%Y-%m-%d}",
        f"- lake: {args.grid} (messages x orgs), the first 29 days of `scale_cycle.py`'s "
        "sample, processed; every org trained with the default config, results dropped",
        "- before: orgs started in name order; Spark hashed the org id into one partition "
        "per org. after: the most processed data first (`largest_first`); Spark one org "
        "per task in that order (`_one_org_per_task`). The same training code in both.",
        "- busy = the orgs' fit seconds summed / (cores x the fan-out's seconds): the share "
        "of the cores' time spent fitting",
        "",
        "| round | engine | variant | fan-out s | orgs' fit s | busy | slowest orgs (s) "
        "| last to finish (pool) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        slowest = ", ".join(f"{o} {s}" for o, s in r["largest"][:3])
        lines.append(
            f"| {r['round']} | {r['engine']} | {r['variant']} | {r['seconds']:.1f} | "
            f"{r['fit_seconds']:.1f} | {r['busy']:.3f} | {slowest} | {', '.join(r['last'])} |"
        )
    lines += ["", "| engine | before s (median) | after s (median) | after / before |"]
    lines += ["|---|---|---|---|"]
    for engine in dict.fromkeys(r["engine"] for r in runs):
        by = {
            v: sorted(r["seconds"] for r in runs if r["engine"] == engine and r["variant"] == v)
            for v in ("before", "after")
        }
        med = {v: statistics.median(s) if s else float("nan") for v, s in by.items()}
        lines.append(
            f"| {engine} | {med['before']:.1f} | {med['after']:.1f} | "
            f"{med['after'] / med['before']:.3f} |"
        )
    timed = [r for r in runs if r.get("org_seconds")]
    if timed:
        lines += simulated(timed[-1], processed, hashed)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="1000000x100", help="MESSAGESxORGS")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--engines", default="local,spark")
    parser.add_argument("--variants", default="after,before", help="a pair's order in round 1")
    parser.add_argument(
        "--append", action="store_true", help="add to the runs already in the report's JSON"
    )
    parser.add_argument("--keep", type=Path, required=True, help="the processed lake's home")
    parser.add_argument("--out", type=Path, default=REPORT)
    parser.add_argument("--render", action="store_true", help="rewrite the report from its JSON")
    args = parser.parse_args()
    messages, orgs = (int(v) for v in args.grid.lower().split("x"))
    home = processed_lake(Point(messages, orgs), args.keep / args.grid)
    settings = settings_for(home)
    spark = get_spark(settings)
    saved = args.out.with_suffix(".json")
    reread = args.append or args.render
    record = json.loads(saved.read_text()) if reread and saved.is_file() else {}
    runs: list[dict[str, Any]] = record.get("runs", [])
    commands: list[str] = record.get("commands", [])
    processed = Lake.from_settings(settings).files("processed", FAMILY)
    hashed = hashed_partitions(spark, sorted({f.org for f in processed}))
    if args.render:
        args.out.write_text(render(runs, args, processed, hashed, commands))
        stop_spark()
        return
    commands.append(f"python benchmarks/{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}")
    first = max((r["round"] for r in runs), default=0)
    try:
        for r in range(args.rounds):
            for engine in args.engines.split(","):
                pair = args.variants.split(",")
                for variant in pair if r % 2 == 0 else pair[::-1]:
                    say(f"run {first + r + 1}: {engine} {variant}")
                    result = run(engine, variant, settings, spark) | {"round": first + r + 1}
                    say(json.dumps({k: v for k, v in result.items() if k != "org_seconds"}))
                    runs.append(result)
                    saved.write_text(json.dumps({"commands": commands, "runs": runs}, indent=1))
                    args.out.write_text(render(runs, args, processed, hashed, commands))
    finally:
        stop_spark()
    print(args.out.read_text())


if __name__ == "__main__":
    main()

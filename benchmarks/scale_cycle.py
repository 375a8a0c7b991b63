"""How the daily cycle's cost grows with data: synthetic lakes of N messages over M orgs.

Usage: python benchmarks/scale_cycle.py --grid 100000x100 1000000x100 1000000x1000
       python benchmarks/scale_cycle.py --quick          (20k x 20: a smoke run)
       ... --compare-engines   also train every org with Spark applyInPandas and the pool
       ... --keep DIR          keep each grid point's generated sample in DIR/<point>/
       ... --skip-increment-all  measure full and increment only
       ... --engines-only      only the engine comparison, into the point's existing row

For each grid point, on a fresh lake and a fresh MLflow server (real ones):

* **full**: the sample's first 29 days are ingested, then the tag cycle runs from an
  empty processed zone: Spark preprocessing of every partition, training of every
  org in the local process pool, gates, registration and promotion of each org;
* **increment**: the held-back 30th day (its messages and its tag events: the tags
  created and archived that day) is ingested and the same cycle runs again, as the
  scheduled retrain the next morning does;
* with ``--compare-engines``: training only (no publishing), every org, once in the
  local pool and once with Spark ``groupBy(org).applyInPandas`` (``local[2]``).
  ``--engines-only`` measures just that, on a lake holding the first 29 days (ingested
  and preprocessed, untimed), and keeps the full and increment already in the JSON: the
  engine cell of a large point costs the two trainings, not a whole cycle again.

The report gives each step's seconds, per-org training throughput (examples/s of one
worker), peak memory (driver; largest pool worker), the ratio increment / full, and
fits ``seconds = a * messages ** b`` per org count over the grid, with a plot.
Writes ``benchmarks/reports/scale_cycle.md`` and ``scale_cycle.png`` (``--out``), from
``scale_cycle.json``, which keeps every grid point measured so far: a run adds or
replaces its own points, so the grid can be measured a point at a time
(``--render`` rewrites the report from the JSON alone).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from common import (
    lifetime_peak_rss_mib,
    log_report,
    machine,
    peak_rss_mib,
    reset_peak_rss,
    say,
    settings_for,
)
from socialsuggest.config import Settings
from socialsuggest.ingest import ingest_paths
from socialsuggest.lake import Lake
from socialsuggest.models.tags import TagModelConfig
from socialsuggest.pipeline.tags_cycle import train_and_publish
from socialsuggest.processing.spark import get_spark, stop_spark
from socialsuggest.processing.tags import FAMILY, preprocess_tags
from socialsuggest.registry import Registry, code_version
from socialsuggest.registry.server import free_port, start_server
from socialsuggest.sampledata import generate
from socialsuggest.training.fanout import processed_orgs, train_orgs_local, train_orgs_spark
from socialsuggest.training.job import OrgResult
from socialsuggest.training.policy import RetrainPolicy

REPORTS = Path(__file__).parent / "reports"
END = date(2026, 11, 1)
DAYS = 30
#: The default model under another fingerprint (no org's vocabulary reaches the cap).
SAME_MODEL = TagModelConfig(max_features=99_999)


@dataclass
class Cycle:
    """One run of the cycle: seconds per step and what it did."""

    ingest_s: float = 0.0
    preprocess_s: float = 0.0
    train_s: float = 0.0
    publish_s: float = 0.0
    partitions: int = 0
    orgs_trained: int = 0
    orgs_fresh: int = 0
    #: no production, latest candidate rejected on barely changed data: not refitted
    orgs_waiting: int = 0
    #: production edited (archived tags switched off), not refitted
    orgs_edited: int = 0
    examples: int = 0
    #: examples the orgs this run trained were fitted on: their processed examples, at
    #: most the per-org cap each (throughput's numerator)
    examples_trained: int = 0
    worker_seconds: float = 0.0
    versions: int = 0
    promoted: int = 0
    #: the driver's resident high-water mark in each step (MiB; ``common.peak_rss_mib``,
    #: reset as the step starts); {} for points measured before 2026-12-06
    peak_mib: dict[str, float] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return self.ingest_s + self.preprocess_s + self.train_s + self.publish_s

    @property
    def train_publish_s(self) -> float:
        """Training and publishing together: the one split every point measures alike
        (since 39348d7 publishing overlaps training, and *train* absorbs what overlapped)."""
        return self.train_s + self.publish_s

    @property
    def throughput(self) -> float:
        """Examples per second of one training worker (the orgs' own seconds)."""
        return self.examples_trained / self.worker_seconds if self.worker_seconds else 0.0


@dataclass
class Point:
    messages: int
    orgs: int
    generate_s: float = 0.0
    spark_start_s: float = 0.0
    full: Cycle = field(default_factory=Cycle)
    increment: Cycle = field(default_factory=Cycle)
    increment_all: Cycle = field(default_factory=Cycle)
    engines: dict[str, float] = field(default_factory=dict)
    driver_peak_mib: float = 0.0
    worker_peak_mib: float = 0.0
    command: str = ""
    measured_on: str = ""
    #: what a reader must know about this point's run (kept in the JSON)
    note: str = ""
    #: ``TagModelConfig.max_examples`` of the run; None: no cap (points before 2026-12-02)
    max_examples: int | None = None
    #: day 30's tag events came with the increment (``sample_files``, since 03d6e52);
    #: False: every tag event was ingested in the full cycle
    day_events_in_increment: bool = False
    #: when the engine cells were measured apart from the cycle (``--engines-only``):
    #: "date, commit, command"; "" = in the run that measured the cycle
    engines_measured: str = ""

    @property
    def label(self) -> str:
        return f"{self.messages:,} msgs / {self.orgs:,} orgs"


@contextmanager
def peak_of(cycle: Cycle, step: str) -> Iterator[None]:
    """Record the driver's resident high-water mark during the block as
    ``cycle.peak_mib[step]``: each step's own peak, not the highest so far. Where the
    mark cannot be reset (not Linux) nothing is recorded: the report shows no step
    peaks rather than the process's peak so far under a step's name."""
    isolated = reset_peak_rss()
    yield
    if isolated:
        cycle.peak_mib[step] = peak_rss_mib()


def run_cycle_step(
    settings: Settings,
    registry: Registry,
    paths: list[Path],
    spark: Any,
    config: TagModelConfig,
    retrain: RetrainPolicy,
) -> Cycle:
    """Ingest these files, then preprocess, train and publish as the daily cycle does."""
    cycle = Cycle()
    lake = Lake.from_settings(settings)
    with peak_of(cycle, "ingest"):
        started = time.perf_counter()
        ingest_paths(lake, paths, flush_rows=settings.ingest_flush_rows)
        cycle.ingest_s = time.perf_counter() - started

    with peak_of(cycle, "preprocess"):
        started = time.perf_counter()
        pre = preprocess_tags(spark, lake, settings=settings)
        cycle.preprocess_s = time.perf_counter() - started
        cycle.partitions = pre.partitions_processed

    # train_and_publish reports each org as it finishes training and publishes it at once
    # (since 2026-12-03; before, every org was trained first): *train* ends at the last
    # org's training line, *publish* is what follows it (the last publications and the
    # archive-only edits), the part of publishing the training did not hide
    marks: list[tuple[float, str]] = []

    def noted(message: str) -> None:
        marks.append((time.perf_counter(), message))
        if message.startswith(("train: ", "integration gate")) and " orgs with " not in message:
            return  # one line per org is too much for thousands of orgs
        say(f"  {message}")

    with peak_of(cycle, "train+publish"):
        started = time.perf_counter()
        outcomes = train_and_publish(
            settings, registry, processed_orgs(lake), config=config, say=noted, spark=spark,
            retrain=retrain,
        )  # fmt: skip
        ended = time.perf_counter()
    publish_start = max((t for t, m in marks if m.startswith("train: ")), default=ended)
    cycle.train_s = publish_start - started
    cycle.publish_s = ended - publish_start
    cycle.orgs_trained = sum(o.trained and o.refit for o in outcomes)
    cycle.orgs_edited = sum(o.trained and not o.refit for o in outcomes)
    cycle.orgs_fresh = sum(bool(o.fresh) for o in outcomes)
    cycle.orgs_waiting = sum(bool(o.waiting) for o in outcomes)
    cycle.worker_seconds = sum(o.train_seconds for o in outcomes)
    cycle.versions = sum(o.version is not None and not o.reused for o in outcomes)
    cycle.promoted = sum(o.promoted for o in outcomes)
    # every processed example (train + validation + test) of every org / the trained ones
    per_org: dict[str, int] = {}
    for f in lake.files("processed", FAMILY):
        per_org[f.org] = per_org.get(f.org, 0) + lake.num_rows(f.key)
    cycle.examples = sum(per_org.values())
    cap = config.max_examples or sys.maxsize
    cycle.examples_trained = sum(
        min(per_org.get(o.org, 0), cap) for o in outcomes if o.trained and o.refit
    )
    return cycle


def compare_engines(settings: Settings, spark: Any, config: TagModelConfig) -> dict[str, float]:
    """Train every org (no publishing) with each engine, on the same processed lake.

    Each result is taken by a callback that drops it, as the cycle's publishing does:
    without one a fan-out returns every org's model, and two engines' worth of 1,000
    orgs' models is several GB held for nothing (only ``ok`` is read here)."""
    lake = Lake.from_settings(settings)
    orgs = processed_orgs(lake)
    as_of = datetime.now(UTC)
    seconds = {}

    def drop(_: OrgResult) -> None:
        pass

    started = time.perf_counter()
    local = train_orgs_local(settings, orgs, config, as_of=as_of, progress=drop)
    seconds["local pool"] = time.perf_counter() - started
    started = time.perf_counter()
    remote = train_orgs_spark(spark, lake, orgs, config, as_of=as_of, progress=drop)
    seconds["spark applyInPandas"] = time.perf_counter() - started
    bad = [r.org for r in local + remote if not r.ok]
    if bad:
        raise RuntimeError(f"engines: {len(bad)} orgs failed to train: {bad[:5]}")
    return seconds


def sample_files(sample: Path) -> tuple[list[Path], list[Path]]:
    """All files but the newest day's, and the newest day's (the increment).

    The generator writes every tag event (created, archived) to one file; it is split
    here by each event's day, into files beside the sample, so the increment brings that
    day's new and archived tags as a real morning does. Before 2026-12-04 the whole file
    went with the full cycle: its models already had day 30's archived tags off, and
    the increment never had a real archive-only edit or a new tag to react to.
    """
    files = sorted(sample.rglob("*.jsonl"))
    last = max(p.stem for p in files if p.parent.name == "messages")
    events = [p for p in files if p.name == "tag_events.jsonl"]
    files = [p for p in files if p not in events]
    history = [p for p in files if p.stem != last]
    newest = [p for p in files if p.stem == last]
    if events:
        before, on_last = _split_events(events, last, sample.parent / f"{sample.name}-events")
        history.append(before)
        newest.append(on_last)
    return history, newest


def _split_events(events: list[Path], last: str, out: Path) -> tuple[Path, Path]:
    """The tag events before day ``last`` (YYYY-MM-DD, UTC) and on it, as two files."""
    before, on_last = out / "history" / "tag_events.jsonl", out / last / "tag_events.jsonl"
    for path in (before, on_last):
        path.parent.mkdir(parents=True, exist_ok=True)
    with before.open("w") as early, on_last.open("w") as late:
        for path in events:
            with path.open() as lines:
                for line in lines:
                    day = str(json.loads(line).get("at", ""))[:10] if line.strip() else ""
                    (late if day >= last else early).write(line)
    return before, on_last


def ensure_sample(point: Point, sample: Path, settings: Settings) -> None:
    """Generate the point's sample unless a kept one is there (``--keep``)."""
    if not (sample / "manifest.json").is_file():
        shutil.rmtree(sample, ignore_errors=True)
        started = time.perf_counter()
        generate(
            sample,
            datasets_dir=settings.resolved_datasets_dir,
            orgs=point.orgs,
            messages=point.messages,
            days=DAYS,
            end=END,
            seed=1,
        )
        point.generate_s = time.perf_counter() - started
        say(f"generated {point.label} in {point.generate_s:.0f}s")


def measure_engines(point: Point, work: Path) -> None:
    """``--engines-only``: the engine comparison alone, on the first 29 days."""
    sample, home = work / "sample", work / "home"
    shutil.rmtree(home, ignore_errors=True)
    settings = settings_for(home)
    ensure_sample(point, sample, settings)
    history, _ = sample_files(sample)
    lake = Lake.from_settings(settings)
    spark = get_spark(settings)
    try:
        say(f"{point.label}: ingest and preprocess 29 days (untimed)")
        ingest_paths(lake, history, flush_rows=settings.ingest_flush_rows)
        preprocess_tags(spark, lake, settings=settings)
        say(f"{point.label}: engines")
        point.engines = compare_engines(settings, spark, TagModelConfig())
        say(f"{point.label}: engines {point.engines}")
    finally:
        stop_spark()
        shutil.rmtree(home, ignore_errors=True)


def engines_into(fresh: Point, work: Path, results: Path, command: str) -> Point:
    """The point's row from the JSON (or ``fresh`` when it has none) with its engine
    cells measured now and the run that measured them recorded beside them."""
    known = {(p.messages, p.orgs): p for p in load_points(results)}
    point = known.get((fresh.messages, fresh.orgs), fresh)
    code = code_version()  # now: the tree may change while the engines train
    measure_engines(fresh, work)
    point.engines = fresh.engines
    point.engines_measured = f"{date.today().isoformat()}, {code}, `{command}`"
    return point


def measure(point: Point, work: Path, args: argparse.Namespace) -> None:
    sample, home = work / "sample", work / "home"
    shutil.rmtree(home, ignore_errors=True)
    settings = settings_for(home)
    ensure_sample(point, sample, settings)
    history, newest = sample_files(sample)
    home.mkdir(parents=True)
    server = start_server(home, port=free_port())
    try:
        registry = Registry(server.url)
        config = TagModelConfig()
        point.max_examples = config.max_examples
        started = time.perf_counter()
        spark = get_spark(settings)
        point.spark_start_s = time.perf_counter() - started
        scheduled = RetrainPolicy.from_settings(settings, "changed")
        say(f"{point.label}: full cycle (29 days)")
        point.full = run_cycle_step(settings, registry, history, spark, config, scheduled)
        say(f"{point.label}: full {json.dumps(cycle_dict(point.full))}")
        say(f"{point.label}: increment (day 30), retrain policy 'changed'")
        point.increment = run_cycle_step(settings, registry, newest, spark, config, scheduled)
        say(f"{point.label}: increment {json.dumps(cycle_dict(point.increment))}")
        if not args.skip_increment_all:
            # what the increment costs when every org is retrained anyway: a config with
            # the same model but another fingerprint, so every org trains and registers again
            say(f"{point.label}: every org retrained on the 30 days (retrain 'all')")
            everything = RetrainPolicy(mode="all")
            point.increment_all = run_cycle_step(
                settings, registry, [], spark, SAME_MODEL, everything
            )
            point.increment_all.ingest_s = point.increment.ingest_s
            point.increment_all.preprocess_s = point.increment.preprocess_s
            say(f"{point.label}: increment, all {json.dumps(cycle_dict(point.increment_all))}")
        if args.compare_engines and point.messages <= args.engines_max:
            point.engines = compare_engines(settings, spark, config)
            say(f"{point.label}: engines {point.engines}")
    finally:
        stop_spark()
        server.stop()
        point.driver_peak_mib = lifetime_peak_rss_mib()  # (steps reset the kernel's mark)
        point.worker_peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        shutil.rmtree(home, ignore_errors=True)  # keep the sample, not the lake


def cycle_dict(cycle: Cycle) -> dict[str, Any]:
    return {
        "ingest_s": round(cycle.ingest_s, 1),
        "preprocess_s": round(cycle.preprocess_s, 1),
        "train_s": round(cycle.train_s, 1),
        "publish_s": round(cycle.publish_s, 1),
        "total_s": round(cycle.total_s, 1),
        "partitions": cycle.partitions,
        "orgs_trained": cycle.orgs_trained,
        "orgs_fresh": cycle.orgs_fresh,
        "orgs_waiting": cycle.orgs_waiting,
        "orgs_edited": cycle.orgs_edited,
        "examples": cycle.examples,
        "versions": cycle.versions,
        "promoted": cycle.promoted,
    }


def fit_power(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """Least squares of log(seconds) on log(messages): seconds = a * messages ** b."""
    if len(points) < 2:
        return None
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return math.exp(my - b * mx), b


def plot(points: list[Point], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for orgs in sorted({p.orgs for p in points}):
        cycled = (p for p in points if p.orgs == orgs and p.full.total_s)  # (not engines only)
        mine = sorted(cycled, key=lambda p: p.messages)
        xs = [p.messages for p in mine]
        left.plot(xs, [p.full.total_s for p in mine], "o-", label=f"full, {orgs} orgs")
        left.plot(xs, [p.increment.total_s for p in mine], "s--", label=f"increment, {orgs} orgs")
        measured = [p for p in mine if p.increment_all.total_s]
        left.plot(
            [p.messages for p in measured],
            [p.increment_all.total_s for p in measured],
            "^:",
            label=f"increment, all, {orgs} orgs",
        )
        known = [p for p in mine if p.full.throughput]  # not recorded: not drawn as 0
        right.plot(
            [p.messages for p in known],
            [p.full.throughput for p in known],
            "o-",
            label=f"{orgs} orgs",
        )
    left.set(xscale="log", yscale="log", xlabel="messages in the lake", ylabel="cycle seconds")
    left.set_title("Daily cycle: full vs one day's increment")
    right.set(xscale="log", xlabel="messages in the lake", ylabel="examples / s per worker")
    right.set_title("Per-org training throughput")
    for axis in (left, right):
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def write_report(points: list[Point], out: Path, command: str) -> None:
    rows = []
    for p in points:
        runs = (("full", p.full), ("increment", p.increment), ("increment, all", p.increment_all))
        for name, c in runs:
            if not c.total_s:  # not measured at this point (see the report's notes)
                continue
            throughput = f"{c.throughput:,.0f}" if c.throughput else "–"
            cap = f"{p.max_examples:,}" if p.max_examples else "none"
            rows.append(
                f"| {p.messages:,} | {p.orgs:,} | {cap} | {name} | {c.ingest_s:.0f} "
                f"| {c.preprocess_s:.0f} "
                f"| {c.train_s:.0f} | {c.publish_s:.0f} | **{c.total_s:.0f}** | {c.partitions:,} "
                f"| {c.examples:,} | {throughput} | {c.orgs_trained} | {c.orgs_edited} "
                f"| {c.orgs_fresh} | {c.orgs_waiting} | {c.versions} |"
            )
    lines = [
        "# The daily cycle at scale",
        "",
        f"- machine (where this report was rendered; a point measured on another CPU says so"
        f" in its note): {machine()}",
        "- commands (each grid point's own, merged from the JSON results):",
        *sorted({f"  - `{p.command or command}` ({p.measured_on})" for p in points}),
        "- what runs: real Spark (`local[2]`), a real MLflow server (SQLite, one worker), the",
        "  local training pool (2 workers); each grid point on a fresh lake and registry.",
        "  *full* = 29 days ingested and the cycle run from nothing; *increment* = day 30",
        "  ingested and the cycle run again as the next morning's schedule runs it (retrain",
        "  policy `changed`: orgs whose model is stale are refitted, orgs whose only change",
        "  is a newly archived tag get production with that tag switched off, no refit, and",
        "  the rest keep serving; since 2026-12-02, an org without production whose latest",
        "  candidate the gates rejected *waits* until the same staleness rules hold for that",
        "  candidate, instead of being refitted on the same data every morning);",
        "  *increment, all* = the same increment with every org retrained (`retrain=all`).",
        *_events_text(points),
        "",
        "## Seconds per step",
        "",
        "| messages | orgs | per-org cap | run | ingest | preprocess | train | publish | total "
        "| partitions "
        "| examples | examples/s per worker | refit | archived tags off | kept (fresh) "
        "| waiting (rejected) | versions |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "*publish* = gates, registration, the integration gate's serving process and",
        "promotion for every org. Points measured with commit 39348d7 or later (here:",
        "100,000 x 1,000, 2026-12-03) publish each org as soon as it is trained, while",
        "the pool fits the others: their *train* ends at the last org's training and",
        "includes the publishing it overlapped, *publish* is the rest (earlier points",
        "trained every org first: compare train + publish), and a worker's seconds",
        "include the CPU it waited for while the driver published. *examples/s per",
        "worker* = the examples the trained orgs were fitted on / the sum of their own",
        "training seconds (one worker's throughput).",
        "*per-org cap* = `TagModelConfig.max_examples`: each org is fitted on its newest",
        "that many examples (since 2026-12-02; *none*: the whole window). Points with",
        "different caps are different code: the growth fit below mixes them when they do.",
        "*preprocess* and *train* of every point here include reading every raw tag-event",
        "file of the lake: in the preprocessing job, and again in the retrain plan on the",
        "driver (`retrain=changed`, not *increment, all*). Since commit fb92e39 both read",
        "only the files new since the last run",
        "(`reports/preprocess_increment.md`, 30k messages over 1,000 orgs and 30 days:",
        "101 -> 22 s for the preprocessing increment, 88 -> 7 s for the plan's read).",
        "",
        "## Increment against full",
        "",
        "| messages | orgs | full s | increment s | ratio | ratio if all retrained | ingest "
        "| preprocess | train+publish |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        f, i = p.full, p.increment
        if not f.total_s:  # engine cells only
            continue
        ratio = i.total_s / f.total_s if f.total_s else 0
        ratio_all = p.increment_all.total_s / f.total_s if f.total_s else 0.0
        lines.append(
            f"| {p.messages:,} | {p.orgs:,} | {f.total_s:.0f} | {i.total_s:.0f} | **{ratio:.2f}** "
            f"| {f'{ratio_all:.2f}' if ratio_all else 'not measured'} "
            f"| {i.ingest_s / max(f.ingest_s, 1e-9):.2f} "
            f"| {i.preprocess_s / max(f.preprocess_s, 1e-9):.2f} "
            f"| {(i.train_s + i.publish_s) / max(f.train_s + f.publish_s, 1e-9):.2f} |"
        )
    lines += ["", "## How cost grows (fit of seconds = a · messages^b, full cycle)", ""]
    lines += [
        "| orgs | b (total) | b (train+publish) | b (preprocess) | points |",
        "|---|---|---|---|---|",
    ]
    for orgs in sorted({p.orgs for p in points}):
        # (a point with engine cells only, ``--engines-only`` on a new point, has no cycle)
        mine = [p for p in points if p.orgs == orgs and p.full.total_s]
        fits = [
            fit_power([(p.messages, getattr(p.full, attr) or 1e-3) for p in mine])
            for attr in ("total_s", "train_publish_s", "preprocess_s")
        ]
        text = [f"{f[1]:.2f}" if f else "–" for f in fits]
        lines.append(f"| {orgs:,} | {' | '.join(text)} | {len(mine)} |")
    lines += [
        "",
        "b = 1 is linear in the data; below 1, fixed costs (Spark start, per-org",
        "registration) still dominate at the small end.",
        "",
        "## Memory and engines",
        "",
        "| messages | orgs | driver peak MiB | driver peak by step, full cycle MiB "
        "| driver peak by step, increment MiB | largest worker peak MiB | Spark start s "
        "| local pool s | Spark applyInPandas s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        pool = p.engines.get("local pool")
        spark = p.engines.get("spark applyInPandas")
        lines.append(
            f"| {p.messages:,} | {p.orgs:,} | {_mib(p.driver_peak_mib)} "
            f"| {_steps_mib(p.full)} | {_steps_mib(p.increment)} "
            f"| {_mib(p.worker_peak_mib)} | {_mib(p.spark_start_s)} | {_mib(pool or 0)} "
            f"| {_mib(spark or 0)} |"
        )
    apart = [f"- {p.label}: {p.engines_measured}" for p in points if p.engines_measured]
    if apart:
        lines += [
            "",
            "Engine cells measured apart from their point's cycle (`--engines-only`: the",
            "first 29 days ingested and preprocessed untimed, then both engines train",
            "every org in one process):",
            "",
            *apart,
        ]
    notes = [f"- {p.label}: {p.note}" for p in points if p.note]
    if notes:
        lines += ["", "## Notes on single grid points", "", *notes]
    lines += [
        "",
        "Peaks are the process's and its children's maximum RSS since the script began, so",
        "a later grid point's number includes the earlier ones' maxima. The by-step peaks",
        "(since 2026-12-06) are the driver's own high-water mark in that step: it is reset",
        "as each step starts (`/proc/self/clear_refs`), to what the process holds then.",
        "",
        f"![cost vs data size]({out.with_suffix('.png').name})",
        "",
    ]
    out.write_text("\n".join(lines))


def _mib(value: float) -> str:
    return f"{value:.0f}" if value else "–"


def _steps_mib(cycle: Cycle) -> str:
    """The step peaks in one cell (ingest / preprocess / train+publish), – if not measured."""
    steps = ("ingest", "preprocess", "train+publish")
    if not all(step in cycle.peak_mib for step in steps):
        return "–"
    return " / ".join(f"{step} {cycle.peak_mib[step]:,.0f}" for step in steps)


def save_points(points: list[Point], path: Path) -> None:
    """Merge these points into the JSON next to the report (same grid point: replaced)."""
    known = {(p.messages, p.orgs): p for p in load_points(path)}
    known |= {(p.messages, p.orgs): p for p in points}
    rows = [asdict(p) for _, p in sorted(known.items())]
    path.write_text(json.dumps(rows, indent=1) + "\n")


def _events_text(points: list[Point]) -> list[str]:
    """Which points' increment brought day 30's tag events (see ``sample_files``)."""
    new = [p.label for p in points if p.day_events_in_increment]
    old = [p.label for p in points if not p.day_events_in_increment]
    lines = [
        "  Day 30's tag events (tags archived or created that day) come with the increment",
        f"  since commit 03d6e52 ({'; '.join(new) or 'no point here yet'}).",
    ]
    if old:
        lines += [
            f"  The other points ({'; '.join(old)}) ingested every tag event in the full",
            "  cycle: their increment had no real archived or new tag to react to (the",
            "  archive edits they show are the bug d091fa0 fixed: see the notes).",
        ]
    return lines


def load_points(path: Path) -> list[Point]:
    if not path.is_file():
        return []
    points = []
    for row in json.loads(path.read_text()):
        cycles = {k: Cycle(**row.pop(k)) for k in ("full", "increment", "increment_all")}
        points.append(Point(**row, **cycles))
    return points


def rewrite(results: Path, out: Path, command: str) -> None:
    """The report and its plot from every grid point in the JSON."""
    everything = load_points(results)
    write_report(everything, out, command)
    plot(everything, out.with_suffix(".png"))
    say(f"report: {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grid", nargs="+", default=["100000x100", "1000000x100"])
    parser.add_argument("--quick", action="store_true", help="one small point (20k x 20)")
    parser.add_argument("--compare-engines", action="store_true")
    parser.add_argument("--engines-max", type=int, default=1_000_000)
    parser.add_argument(
        "--skip-increment-all",
        action="store_true",
        help="leave out 'increment, all' (every org retrained again: as long as a full "
        "cycle's training and publishing, ~35 min at 1,000 orgs)",
    )
    parser.add_argument(
        "--engines-only",
        action="store_true",
        help="only compare the engines, keeping the point's cycle numbers from the JSON",
    )
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the report from its JSON results"
    )
    args = parser.parse_args()
    grid = [] if args.render else ["20000x20"] if args.quick else args.grid
    out = args.out or REPORTS / ("scale_cycle_quick.md" if args.quick else "scale_cycle.md")
    results = out.with_suffix(".json")  # every grid point measured so far, merged
    command = "python benchmarks/scale_cycle.py " + " ".join(sys.argv[1:])
    if args.render:
        rewrite(results, out, command)
        return
    points, interrupted = [], False
    for item in grid:
        messages, orgs = (int(x) for x in item.lower().split("x"))
        point = Point(messages=messages, orgs=orgs, command=command,
                      measured_on=date.today().isoformat(),
                      day_events_in_increment=True)  # fmt: skip
        work = (args.keep or Path(tempfile.mkdtemp(prefix="scale-"))) / item
        try:
            if args.engines_only:
                point = engines_into(point, work, results, command)
            else:
                measure(point, work, args)
        except KeyboardInterrupt:
            # a point takes hours at the large end: Ctrl-C keeps the steps it finished
            if not point.full.total_s:
                raise
            point.note = (point.note + " " if point.note else "") + (
                "The run was interrupted after "
                + ("the increment" if point.increment.total_s else "the full cycle")
                + ": the later steps were not measured."
            )
            say(f"{point.label}: interrupted; saving the steps measured")
            interrupted = True
        points.append(point)
        REPORTS.mkdir(exist_ok=True)
        save_points(points, results)
        rewrite(results, out, command)
        if interrupted:
            break
    if args.engines_only:  # the cycle numbers were logged when they were measured
        return
    metrics = {}
    for p in points:
        key = f"m{p.messages}_o{p.orgs}"
        metrics |= {f"{key}.full_s": p.full.total_s, f"{key}.increment_s": p.increment.total_s}
    log_report("scale-cycle", out, [out.with_suffix(".png")], metrics)


if __name__ == "__main__":
    main()

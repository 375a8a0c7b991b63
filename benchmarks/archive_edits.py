"""What publishing an archive-only edit costs per org, and where that time goes.

Usage: python benchmarks/archive_edits.py --orgs 40 --messages 40000 --rounds 4

When a tag is archived and nothing else about an org changed, the scheduled retrain
does not refit: production's model with the tag switched off is evaluated, registered
and promoted as a new version (``training.policy``, action *archive*). At 1,000 orgs a
third of them archive a tag on a given day, and those edits were the whole of the
1M-message increment in ``scale_cycle.md`` (~2.9 s each then, 2.4 s on 2026-12-06).

What runs: a generated lake (``--orgs`` orgs, ``--messages`` over 30 days), ingested
and put through one full tags cycle (real Spark ``local[2]``, a real MLflow server,
the local training pool). Then ``--rounds`` rounds, each archiving one more tag of
every org serving a model (a tag production suggests, absent from the test slice, so
the gates pass and every edit goes the whole way: registration, integration gate,
promotion) and running ``train_and_publish`` with the scheduled policy, alternating:

* *reload*: the edit does not carry production's metrics, so publishing downloads
  production again to score it (the behaviour before 2026-12-03, restored here by
  wrapping ``tags_cycle._archive_in_production``);
* *reuse*: as the code stands: production, loaded once to make the edit, is scored
  there and publishing compares with those numbers.

One more round of each variant runs under cProfile for the breakdown table (profiled
seconds are inflated; read them as shares). Writes
``benchmarks/reports/archive_edits.md``; nothing is asserted here.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from common import log_report, machine, say, settings_for
from socialsuggest.config import Settings
from socialsuggest.ingest import ingest_events, ingest_paths
from socialsuggest.lake import Lake
from socialsuggest.pipeline import tags_cycle
from socialsuggest.pipeline.tags_cycle import train_and_publish
from socialsuggest.processing.spark import get_spark, stop_spark
from socialsuggest.processing.splits import VALID_FRAC, load_examples, newest, time_split
from socialsuggest.processing.tags import preprocess_tags
from socialsuggest.registry import PRODUCTION, Registry
from socialsuggest.registry.server import free_port, start_server
from socialsuggest.sampledata import generate
from socialsuggest.training.fanout import processed_orgs
from socialsuggest.training.job import OrgResult
from socialsuggest.training.policy import RetrainPolicy

REPORTS = Path(__file__).parent / "reports"
END = date(2026, 11, 1)
#: Where an edit's publishing time goes: (label, function name, file it is defined in).
BREAKDOWN = [
    ("load production, examples, lifecycle; edit; score", "_archive_in_production", "tags_cycle"),
    ("  production downloaded and unpickled", "load_version", "registry"),
    ("  candidate evaluated on the test slice", "evaluate_model", "metrics"),
    ("publish (all below)", "publish", "tags_cycle"),
    ("  production downloaded again (reload only)", "_production_metrics", "tags_cycle"),
    ("  plots", "training_plots", "plots"),
    ("  run, artifacts, model logged, version registered", "log_candidate", "registry"),
    ("  integration gate (serving process answers)", "integration_gate", "integration"),
    ("  integration tags written", "tag_version", "registry"),
    ("  staging + production aliases", "set_alias", "registry"),
]


def reload_variant() -> Any:
    """``_archive_in_production`` as before 2026-12-03: no production metrics carried."""
    original = tags_cycle._archive_in_production

    def without_metrics(*args: Any, **kwargs: Any) -> OrgResult:
        result: OrgResult = original(*args, **kwargs)
        result.production_metrics = None
        return result

    return original, without_metrics


def archive_one_tag_each(lake: Lake, registry: Registry, orgs: list[str]) -> int:
    """Archive, for every org serving a model, the least used tag production suggests
    that its test slice does not hold (so no metric moves and the gates pass)."""
    events = []
    for org in orgs:
        info = registry.version_by_alias(f"tags.{org}", PRODUCTION)
        if info is None:
            continue
        model = registry.load_version(info).model
        examples = newest(load_examples(lake, org), model.config.max_examples)
        _, _, test = time_split(examples, VALID_FRAC, 0.1)
        in_test = {t for tags in test["tags"] for t in tags}
        spare = [t for t in reversed(model.recent_tags) if t not in in_test]
        if spare:
            events.append({
                "event_type": "tag_lifecycle", "schema_version": 1, "org_id": org,
                "tag": spare[0], "action": "archived", "at": datetime.now(UTC).isoformat(),
                "actor_id": "ag-benchmark",
            })  # fmt: skip
    ingest_events(lake, events)
    return len(events)


def run_round(
    settings: Settings, registry: Registry, spark: Any, orgs: list[str], variant: str,
    profile: cProfile.Profile | None,
) -> dict[str, float]:  # fmt: skip
    lake = Lake.from_settings(settings)
    archived = archive_one_tag_each(lake, registry, orgs)
    started = time.perf_counter()
    preprocess_tags(spark, lake, settings=settings)
    preprocess_s = time.perf_counter() - started
    original, without = reload_variant()
    making = without if variant == "reload" else original
    loading: list[float] = []

    def timed(*args: Any, **kwargs: Any) -> OrgResult:
        """One edit made (``_archive_in_production``), its seconds kept."""
        begun = time.perf_counter()
        try:
            result: OrgResult = making(*args, **kwargs)
        finally:
            loading.append(time.perf_counter() - begun)
        return result

    tags_cycle._archive_in_production = timed  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        if profile is not None:
            profile.enable()
        outcomes = train_and_publish(
            settings, registry, orgs, retrain=RetrainPolicy(mode="changed")
        )
        if profile is not None:
            profile.disable()
        ended = time.perf_counter()
    finally:
        tags_cycle._archive_in_production = original  # type: ignore[assignment]
    edited = [o for o in outcomes if o.trained and not o.refit]
    promoted = sum(o.promoted for o in edited)
    row = {
        "archived": archived,
        "edited": len(edited),
        "promoted": promoted,
        "refit": sum(o.trained and o.refit for o in outcomes),
        "preprocess_s": preprocess_s,
        "load_s": sum(loading),
        "publish_s": ended - started - sum(loading),
        "total_s": ended - started,
    }
    say(f"round {variant}{' (profiled)' if profile else ''}: {row}")
    return row


def breakdown(profile: cProfile.Profile, edits: int) -> dict[str, float]:
    """Cumulative seconds per edit of the functions in ``BREAKDOWN``."""
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    out = {}
    for label, name, module in BREAKDOWN:
        seconds = sum(
            entry[3]
            for (path, _line, func), entry in stats.items()
            if func == name and Path(path).stem == module and "socialsuggest" in path
        )
        out[label] = seconds / max(edits, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orgs", type=int, default=40)
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument("--rounds", type=int, default=4, help="timed rounds, variants alternated")
    parser.add_argument("--workdir", type=Path, default=None, help="kept when given")
    parser.add_argument("--out", type=Path, default=REPORTS / "archive_edits.md")
    args = parser.parse_args()
    command = "python benchmarks/archive_edits.py " + " ".join(sys.argv[1:])
    work = args.workdir or Path(tempfile.mkdtemp(prefix="archive-edits-"))
    sample, home = work / "sample", work / "home"
    shutil.rmtree(home, ignore_errors=True)
    settings = settings_for(home)
    if not (sample / "manifest.json").is_file():
        generate(sample, datasets_dir=settings.resolved_datasets_dir, orgs=args.orgs,
                 messages=args.messages, days=30, end=END, seed=1)  # fmt: skip
    home.mkdir(parents=True)
    server = start_server(home, port=free_port())
    rows: dict[str, list[dict[str, float]]] = {"reload": [], "reuse": []}
    shares: dict[str, dict[str, float]] = {}
    try:
        registry = Registry(server.url)
        lake = Lake.from_settings(settings)
        spark = get_spark(settings)
        say(f"ingest + full cycle: {args.orgs} orgs, {args.messages:,} messages")
        ingest_paths(lake, sorted(sample.rglob("*.jsonl")), flush_rows=settings.ingest_flush_rows)
        preprocess_tags(spark, lake, settings=settings)
        orgs = processed_orgs(lake)
        full = train_and_publish(settings, registry, orgs, retrain=RetrainPolicy(mode="all"))
        say(f"full cycle: {sum(o.promoted for o in full)} of {len(orgs)} orgs promoted")
        for i in range(args.rounds):
            variant = ("reload", "reuse")[i % 2]
            rows[variant].append(run_round(settings, registry, spark, orgs, variant, None))
        for variant in ("reload", "reuse"):
            profile = cProfile.Profile()
            row = run_round(settings, registry, spark, orgs, variant, profile)
            shares[variant] = breakdown(profile, int(row["edited"]))
    finally:
        stop_spark()
        server.stop()
    write_report(args.out, command, args, rows, shares)
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    per_edit = {
        f"{v}.per_edit_s": statistics.median(r["total_s"] / max(r["edited"], 1) for r in rs)
        for v, rs in rows.items()
        if rs
    }
    log_report("archive-edits", args.out, [], per_edit)


def write_report(
    out: Path,
    command: str,
    args: argparse.Namespace,
    rows: dict[str, list[dict[str, float]]],
    shares: dict[str, dict[str, float]],
) -> None:
    lines = [
        "# Archive-only edits: what publishing one costs",
        "",
        f"- machine: {machine()}",
        f"- command: `{command}`",
        f"- date: {date.today().isoformat()}",
        "",
        (__doc__ or "").split("\n\n", 2)[2].strip(),
        "",
        "## Timed rounds (no profiler)",
        "",
        "*load* = the edits being made (production, examples and lifecycle read, tags "
        "switched off, scored: ``_archive_in_production``, timed per call); *publish* = "
        "the rest of the cycle (the retrain plan; every edit gated, registered, served by "
        "the integration gate's process, promoted; the first edit also starts that "
        "process). Before 2026-12-06 every edit was made before training and *load* ran "
        "from the cycle's start to the training step, so it also held the retrain plan.",
        "",
        "| variant | orgs edited | promoted | refits | preprocess s | load s | publish s "
        "| total s | s per edit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, variant_rows in rows.items():
        for r in variant_rows:
            per_edit = r["total_s"] / max(r["edited"], 1)
            lines.append(
                f"| {variant} | {r['edited']:.0f} | {r['promoted']:.0f} | {r['refit']:.0f} "
                f"| {r['preprocess_s']:.1f} | {r['load_s']:.1f} | {r['publish_s']:.1f} "
                f"| {r['total_s']:.1f} | **{per_edit:.2f}** |"
            )
    if shares:
        lines += [
            "",
            "## Where an edit's time goes (cProfile, cumulative seconds per edit)",
            "",
            "| step | " + " | ".join(shares) + " |",
            "|---|" + "---|" * len(shares),
        ]
        for label, _, _ in BREAKDOWN:
            cells = " | ".join(f"{shares[v][label]:.3f}" for v in shares)
            lines.append(f"| {label.replace('  ', '&nbsp;&nbsp;')} | {cells} |")
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"report: {out}")


if __name__ == "__main__":
    main()

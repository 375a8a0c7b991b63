"""Ingest throughput: generate N sample messages, ingest them, report rows/s and memory.

Usage: python benchmarks/ingest_throughput.py --messages 1000000 --orgs 100 --days 30
Writes benchmarks/reports/ingest_<messages>.md (machine, command, numbers). Timings are
measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from common import machine
from socialsuggest.config import load_settings
from socialsuggest.ingest import ingest_paths
from socialsuggest.lake import Lake, LocalStorage
from socialsuggest.sampledata import generate

REPORTS = Path(__file__).parent / "reports"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--orgs", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    settings = load_settings()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    sample, lake_root = work / "sample", work / "lake"
    shutil.rmtree(work, ignore_errors=True)

    started = time.perf_counter()
    manifest = generate(
        sample,
        datasets_dir=settings.resolved_datasets_dir,
        orgs=args.orgs,
        messages=args.messages,
        days=args.days,
        end=date(2026, 11, 1),
        seed=1,
    )
    generate_s = time.perf_counter() - started
    records = sum(manifest.counts.values())
    input_bytes = sum(p.stat().st_size for p in sample.rglob("*.jsonl"))

    lake = Lake(LocalStorage(lake_root))
    started = time.perf_counter()
    report = ingest_paths(lake, [sample], flush_rows=settings.ingest_flush_rows)
    ingest_s = time.perf_counter() - started
    started = time.perf_counter()
    again = ingest_paths(lake, [sample], flush_rows=settings.ingest_flush_rows)
    reingest_s = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lake_bytes = sum(p.stat().st_size for p in lake_root.rglob("*.parquet"))

    result = {
        "messages": args.messages,
        "orgs": args.orgs,
        "days": args.days,
        "records_in": records,
        "input_mib": round(input_bytes / 2**20, 1),
        "generate_s": round(generate_s, 1),
        "generate_messages_per_s": round(args.messages / generate_s),
        "ingest_s": round(ingest_s, 1),
        "ingest_records_per_s": round(records / ingest_s),
        "reingest_s": round(reingest_s, 1),
        "reingest_records_per_s": round(records / reingest_s),
        "objects_written": len(report.objects),
        "lake_mib": round(lake_bytes / 2**20, 1),
        "quarantined": report.quarantined_total,
        "reingest_written": again.written_total,
        "peak_rss_mib": round(peak_mib),
    }
    command = "python benchmarks/ingest_throughput.py " + " ".join(sys.argv[1:])
    REPORTS.mkdir(exist_ok=True)
    out = REPORTS / f"ingest_{args.messages}.md"
    out.write_text(
        f"# Ingest throughput, {args.messages:,} messages\n\n"
        f"- machine: {machine()}\n- command: `{command}`\n- date: {date.today()}\n\n"
        "| metric | value |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in result.items())
    )
    print(json.dumps(result, indent=2))
    print(f"report: {out}")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

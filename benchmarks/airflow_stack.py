"""`make run`'s stack: start-up time, memory per component and DAG run durations.

Usage: python benchmarks/airflow_stack.py [--orgs 8 --messages 20000 --days 30]
       [--parallelism 2] [--out benchmarks/reports/airflow_stack.md]

In a fresh temporary home on private ports: ingest the sample, start the stack
(MLflow, API, Airflow api-server/scheduler/dag-processor/triggerer), unpause, and
follow the first ``tags_daily_retrain`` while a sampler thread records, once a
second, the PSS of every process the stack started (task processes included, as
descendants of the scheduler). Then a ``gdpr_forget`` and a ``model_rollback`` run
through the REST API (what the trigger forms call), and ``down``. Reports start-up
per step, per-task durations, peak and idle memory per component.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))
from common import machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orgs", type=int, default=8)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "reports" / "airflow_stack.md"
    )
    args = parser.parse_args()

    from socialsuggest.registry.server import free_port

    home = Path(tempfile.mkdtemp(prefix="socialsuggest-bench-stack-"))
    for key in [k for k in os.environ if k.startswith(("SOCIALSUGGEST_", "MLFLOW_"))]:
        del os.environ[key]
    os.environ.update(
        {
            "SOCIALSUGGEST_HOME": str(home),
            "SOCIALSUGGEST_MLFLOW_PORT": str(free_port()),
            "SOCIALSUGGEST_API_PORT": str(free_port()),
            "SOCIALSUGGEST_AIRFLOW_PORT": str(free_port()),
            "SOCIALSUGGEST_AIRFLOW_PARALLELISM": str(args.parallelism),
        }
    )
    from socialsuggest.config import load_settings
    from socialsuggest.pipeline import run_cycle
    from socialsuggest.stack import LocalStack

    settings = load_settings()
    lines: list[str] = []
    steps: list[tuple[str, float]] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    started = time.monotonic()
    run_cycle(settings, orgs=args.orgs, messages=args.messages, days=args.days)
    steps.append(("sample data (generate + ingest)", time.monotonic() - started))
    stack = LocalStack(settings, say=say)
    sampler = _Sampler(stack)
    try:
        mark = time.monotonic()
        stack.up()
        steps.append(("stack up (MLflow, API, Airflow migrate/pool/parse/start)",
                      time.monotonic() - mark))  # fmt: skip
        stack.unpause_all()
        sampler.start()
        time.sleep(10)
        idle = sampler.snapshot()
        sampler.phase = "first tags_daily_retrain"
        first = stack.first_run(timeout=3600)
        sampler.phase = "gdpr_forget"
        client = stack.api()
        subject = _some_author(home)
        runs = [first]
        forget = client.trigger(
            "gdpr_forget", {"subject_id": subject, "reason": "bench", "requester": "bench"}
        )
        runs.append(client.follow("gdpr_forget", forget["dag_run_id"], timeout=900, say=say))
        sampler.phase = "retrain one org + rollback"
        again = client.trigger("tags_daily_retrain", {"orgs": ["acme"]})
        runs.append(client.follow("tags_daily_retrain", again["dag_run_id"], timeout=900, say=say))
        back = client.trigger(
            "model_rollback", {"family": "tags", "org": "acme", "reason": "bench",
                               "requester": "bench"},
        )  # fmt: skip
        runs.append(client.follow("model_rollback", back["dag_run_id"], timeout=600, say=say))
        client.close()
    finally:
        sampler.stop()
        mark = time.monotonic()
        stack.down()
        down_s = time.monotonic() - mark
        shutil.rmtree(home, ignore_errors=True)
    _report(args, steps, idle, sampler, runs, down_s)


def _some_author(home: Path) -> str:
    import pyarrow.dataset as ds

    table = ds.dataset(home / "lake" / "raw" / "messages", partitioning="hive").to_table(
        columns=["author_id"]
    )
    return str(sorted(set(table["author_id"].to_pylist()))[0])


class _Sampler(threading.Thread):
    """PSS per component (its whole process tree) once a second; peaks per phase."""

    def __init__(self, stack: object) -> None:
        super().__init__(daemon=True)
        self.stack = stack
        self.phase = "idle"
        self.peak: dict[str, dict[str, float]] = defaultdict(dict)
        self.peak_total: dict[str, float] = defaultdict(float)
        self._stop = threading.Event()

    def snapshot(self) -> dict[str, float]:
        out = {}
        for name, launched in self.stack.launched.items():  # type: ignore[attr-defined]
            total = 0
            try:
                root = psutil.Process(launched.pid)
                for proc in [root, *root.children(recursive=True)]:
                    try:
                        info = proc.memory_full_info()
                        total += getattr(info, "pss", info.rss)
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            out[name] = total / 2**20
        return out

    def run(self) -> None:
        while not self._stop.is_set():
            snap = self.snapshot()
            phase = self.peak[self.phase]
            for name, mib in snap.items():
                phase[name] = max(phase.get(name, 0.0), mib)
            airflow = sum(v for k, v in snap.items() if k.startswith("airflow"))
            self.peak_total[self.phase] = max(self.peak_total[self.phase], airflow)
            time.sleep(1)

    def stop(self) -> None:
        self._stop.set()


def _report(args, steps, idle, sampler, runs, down_s) -> None:  # type: ignore[no-untyped-def]
    names = list(idle)
    out = [
        "# `make run` stack: start-up, memory, DAG run durations",
        "",
        f"Machine: {machine()}. Command: `python benchmarks/airflow_stack.py --orgs {args.orgs} "
        f"--messages {args.messages} --days {args.days} --parallelism {args.parallelism}`.",
        "Airflow 3 components run separately (LocalExecutor, SQLite, one API worker, one "
        "parsing process); memory is PSS (shared pages split between sharers) of each "
        "component's whole process tree, so task processes count under the scheduler.",
        "",
        "## Start-up",
        "",
        "| step | seconds |",
        "|---|---:|",
        *[f"| {name} | {seconds:.0f} |" for name, seconds in steps],
        f"| stack down (every process stopped) | {down_s:.0f} |",
        "",
        "## DAG runs (through the scheduler)",
        "",
        "| DAG | state | run seconds | tasks (seconds each) |",
        "|---|---|---:|---|",
    ]
    for run in runs:
        tasks = ", ".join(
            f"{t.label} {t.duration:.0f}" for t in run.tasks if t.duration is not None
        )
        out.append(f"| {run.dag_id} | {run.state} | {run.seconds:.0f} | {tasks} |")
    out += [
        "",
        "## Memory (MiB, PSS)",
        "",
        "| component | idle | " + " | ".join(f"peak: {p}" for p in sampler.peak) + " |",
        "|---|---:|" + "---:|" * len(sampler.peak),
    ]
    for name in names:
        peaks = " | ".join(f"{sampler.peak[p].get(name, 0):.0f}" for p in sampler.peak)
        out.append(f"| {name} | {idle[name]:.0f} | {peaks} |")
    airflow_idle = sum(v for k, v in idle.items() if k.startswith("airflow"))
    peaks = " | ".join(f"{sampler.peak_total[p]:.0f}" for p in sampler.peak)
    out.append(f"| **Airflow (4 components)** | {airflow_idle:.0f} | {peaks} |")
    args.out.write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()

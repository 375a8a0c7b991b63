"""Shared by the benchmark scripts: how a report names the machine it ran on."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from socialsuggest.config import Settings, load_settings


def say(message: str) -> None:
    """A progress line stamped with the wall-clock time (long runs are read beside logs)."""
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def settings_for(home: Path) -> Settings:
    """Embedded settings for a benchmark's own throwaway home (lake under it, no catalog)."""
    return load_settings(
        home=home, lake_root=str(home / "lake"), catalog_url="", profile="embedded"
    )


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Python {platform.python_version()}"


#: The tracking server the person running the benchmark named, read at import: the
#: benchmarks start their own throwaway servers (a Registry no longer changes the
#: process-wide URI, but a benchmark's own mlflow.set_tracking_uri would).
TRACKING_URI = os.environ.get("MLFLOW_TRACKING_URI", "")


def log_report(
    experiment: str, report: Path, plots: list[Path], metrics: dict[str, float]
) -> str | None:
    """Log a benchmark report, its plots and headline numbers as one MLflow run.

    Only when MLFLOW_TRACKING_URI names a tracking server (a team's shared one): the
    reports under benchmarks/reports/ are the record either way. Returns the run id.
    """
    uri = TRACKING_URI
    if not uri.startswith(("http://", "https://")):
        print(f"MLflow: MLFLOW_TRACKING_URI not set to a server, {report.name} not logged")
        return None
    import re

    import mlflow

    from socialsuggest.registry.server import healthy

    if not healthy(uri):  # MLflow's client would retry for minutes
        print(f"MLflow: {uri} does not answer /health, {report.name} not logged")
        return None

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(f"benchmarks/{experiment}")
    with mlflow.start_run(run_name=report.stem) as run:
        mlflow.set_tags({"machine": machine(), "report": report.name})
        mlflow.log_metrics(
            {re.sub(r"[^\w./ -]", "_", k)[:250]: float(v) for k, v in metrics.items() if v == v}
        )
        for path in [report, *plots]:
            if path.is_file():
                mlflow.log_artifact(str(path))
    print(f"MLflow: logged {report.name} as run {run.info.run_id} in benchmarks/{experiment}")
    return str(run.info.run_id)


_CLEARED_PEAK_MIB = 0.0  # the highest mark reset_peak_rss has cleared


def reset_peak_rss() -> bool:
    """Start a new high-water mark of this process's resident memory (Linux:
    ``/proc/self/clear_refs`` 5), so a step's peak is its own; False where that is not
    possible, and ``peak_rss_mib`` then reads the process's peak so far. The mark it
    clears still counts in ``lifetime_peak_rss_mib``."""
    global _CLEARED_PEAK_MIB
    before = peak_rss_mib()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    _CLEARED_PEAK_MIB = max(_CLEARED_PEAK_MIB, before)
    return True


def lifetime_peak_rss_mib() -> float:
    """This process's resident high-water mark since it started, resets included."""
    return max(_CLEARED_PEAK_MIB, peak_rss_mib())


def peak_rss_mib() -> float:
    """This process's resident high-water mark since ``reset_peak_rss`` (or its start),
    in MiB: ``VmHWM``, else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

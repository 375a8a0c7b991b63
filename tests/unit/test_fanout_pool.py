"""The training pool works under an entry point that must not be re-imported (Airflow's).

In an Airflow task ``__main__`` is Airflow's CLI, whose import sets up its database
layer, which task processes are denied; spawn re-ran it in each worker and every org
failed with "worker failed". The script below has a main module that refuses to be
imported a second time, exactly that situation, with no Airflow needed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ENTRY = textwrap.dedent(
    """
    import os, sys
    if __name__ != "__main__":  # what a spawned worker does with the parent's main
        raise RuntimeError("entry point imported again in a worker")

    from socialsuggest.training.fanout import plain_main
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    protect = sys.argv[1] == "protected"
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        if protect:
            with plain_main():
                futures = [pool.submit(os.getpid) for _ in range(4)]
        else:
            futures = [pool.submit(os.getpid) for _ in range(4)]
        try:
            pids = {f.result() for f in futures}
        except Exception as exc:
            print("BROKEN", type(exc).__name__)
            sys.exit(3)
    assert os.getpid() not in pids
    assert sys.modules["__main__"].__file__.endswith("entry.py")  # restored
    print("WORKERS", len(pids))
    """
)


def _run(tmp_path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    entry = tmp_path / "entry.py"
    entry.write_text(ENTRY)
    return subprocess.run(
        [sys.executable, str(entry), mode], capture_output=True, text=True, timeout=120
    )


def test_workers_start_without_re_importing_the_entry_point(tmp_path: Path) -> None:
    done = _run(tmp_path, "protected")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "WORKERS" in done.stdout


def test_without_the_guard_the_same_entry_point_breaks_the_pool(tmp_path: Path) -> None:
    # the control: proves the script reproduces the Airflow failure the guard fixes
    done = _run(tmp_path, "unprotected")
    assert done.returncode == 3, done.stdout + done.stderr[-2000:]
    assert "BROKEN" in done.stdout

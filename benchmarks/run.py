"""Run the benchmark suite: `--profile quick` (minutes) or `--profile full`."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
#: The quick profile must finish in under 15 minutes in total on the 2-core machine.
PROFILES = {
    "quick": [
        ["ingest_throughput.py", "--messages", "100000", "--orgs", "20"],
        [
            "tags_accuracy.py",
            "--datasets",
            "se_crypto",
            "tw_covid19",
            "--ablation",
            # every peer (fastText, Annif; infra/peers.sh makes .venv-peers on first use)
            # with a short autotune
            "--autotune-seconds",
            "30",
            "--out",
            str(HERE / "reports" / "tags_accuracy_quick.md"),
        ],
        ["privacy_forget.py", "--quick"],
        # the other families against their baselines (#9): ~1, ~2 and <1 min
        ["hashtags_accuracy.py"],
        ["replies_accuracy.py"],
        ["trends_accuracy.py"],
        # one small lake (20k messages, 20 orgs): full cycle, increment, Spark vs pool
        ["scale_cycle.py", "--quick", "--compare-engines"],
    ],
    "full": [
        ["ingest_throughput.py", "--messages", "1000000", "--orgs", "100"],
        ["tags_accuracy.py"],
        # our fit time against fastText in interleaved rounds (~15 min)
        ["tags_speed.py"],
        ["tags_learning_curve.py"],
        ["tags_gap.py"],
        ["privacy_forget.py"],
        ["hashtags_accuracy.py"],
        ["replies_accuracy.py"],
        ["trends_accuracy.py"],
        ["airflow_stack.py"],
        ["serving_latency.py"],
        # one day's preprocessing at 1,000 orgs with and without the tag-event cache (~15 min)
        ["preprocess_increment.py", "--messages", "30000", "--orgs", "1000"],
        # what an archive-only edit costs to publish (~12 min)
        ["archive_edits.py", "--orgs", "40", "--messages", "40000", "--rounds", "4"],
        # 2 cores: the 1M point takes ~45 min, 1,000 orgs ~35 min a cycle (publishing)
        [
            "scale_cycle.py",
            "--grid",
            "100000x100",
            "1000000x100",
            "100000x1000",
            "5000000x100",
            "--compare-engines",
        ],
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    args = parser.parse_args()
    for script, *script_args in PROFILES[args.profile]:
        print(f"== {script} {' '.join(script_args)}", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *script_args], check=True)


if __name__ == "__main__":
    main()

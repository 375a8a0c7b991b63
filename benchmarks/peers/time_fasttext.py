"""Train one fastText recipe once and print its training seconds as JSON (in .venv-peers).

``tags_speed.py`` runs this in a fresh process for every timing: this fastText build
leaves part of its input matrix uninitialised, and a second training in one process
can start from the first one's garbage (see ``run_peers.FASTTEXT_THREADS``). The import
is outside the timed span, as our fit's imports are outside ours.
"""

from __future__ import annotations

import argparse
import json
import time

from run_peers import FASTTEXT_SETTINGS, FASTTEXT_THREADS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="fastText training file")
    parser.add_argument("--method", choices=sorted(FASTTEXT_SETTINGS), required=True)
    args = parser.parse_args()
    import fasttext

    started = time.perf_counter()
    model = fasttext.train_supervised(
        input=args.input, thread=FASTTEXT_THREADS, verbose=0, **FASTTEXT_SETTINGS[args.method]
    )
    seconds = time.perf_counter() - started
    print(json.dumps({"train_s": seconds, "labels": len(model.labels)}))


if __name__ == "__main__":
    main()

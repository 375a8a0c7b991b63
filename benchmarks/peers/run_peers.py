"""Peer tag models on one split, run inside .venv-peers (never imports socialsuggest).

Reads ``train.ft``, ``valid.ft`` and ``test.ft`` (fastText format, text already
normalised) from ``--split DIR``, trains each requested method, scores every test line
and writes ``--out FILE.json`` plus one ``FILE.<method>.npy`` per method: a dense float32
matrix (n_test, n_labels) with the score of every label the method knows for every test
line, columns in the order of that method's ``labels`` list. Pairs a method did not
score are 0.0 (the JSON says so in ``unscored``). Metrics are NOT computed here: the
caller scores every method with the project's own functions.

Methods:

- ``fasttext``: supervised with the fastText tutorial's multi-label command: lr 0.5,
  epoch 25, wordNgrams 2, bucket 200000, dim 50, ``loss='ova'`` (one-vs-all, an
  independent sigmoid per label); trained on train.ft + valid.ft. (lr 1.0 with ``ova`` stops
  with "Encountered NaN" on 4 of the 5 data sets, which is why the tutorial lowers it.)
- ``fasttext_softmax``: the tutorial's single-label recipe lr 1.0, epoch 25,
  wordNgrams 2, softmax loss (the setting of the reference numbers in
  datasets/README.md); scores are the softmax probabilities; trained on train.ft + valid.ft.
- ``fasttext_autotune``: fastText's autotune on train.ft with valid.ft as
  ``autotuneValidationFile`` for ``--autotune-seconds``, same ``loss='ova'``, default
  autotune metric (f1 at autotunePredictions=1); the tuned model is retrained on train.ft
  (if that final retrain fails, the best arguments from autotune's log are retrained in
  a fresh model; the JSON says so). Every fastText method runs fastText's default 12
  threads (see FASTTEXT_THREADS).
- ``annif_tfidf``, ``annif_svc``, ``annif_omikuji`` (Bonsai settings of the Annif wiki:
  cluster_balanced=False, cluster_k=100, max_depth=3), ``annif_ensemble`` (the three,
  equal weights): Annif through its Python API, trained on train.ft + valid.ft (none of
  these backends uses a validation split; the ensemble has no training of its own, its
  train_s is the sum of its sources'). Analyzer ``snowball(english)``: the Snowball
  stemmer needs no data, but every Annif analyzer tokenises with NLTK's Punkt, whose
  ``punkt_tab`` data cannot be downloaded offline: when NLTK cannot find it, an empty
  Punkt parameter set (no abbreviations, collocations or sentence starters) is written to
  a private NLTK data dir and used instead; the JSON says which (``punkt``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

METHODS = (
    "fasttext",
    "fasttext_softmax",
    "fasttext_autotune",
    "annif_tfidf",
    "annif_svc",
    "annif_omikuji",
    "annif_ensemble",
)
LABEL = "__label__"
URI_BASE = "http://socialsuggest.invalid/tag/"
# The tutorial's two recipes. Its multi-label one lowers lr to 0.5: with loss='ova',
# lr 1.0 stops with "Encountered NaN" on 4 of the 5 data sets here (all but tw_covid19).
FASTTEXT_SETTINGS = {
    "fasttext": {"lr": 0.5, "epoch": 25, "wordNgrams": 2, "bucket": 200000, "dim": 50,
                 "loss": "ova"},
    "fasttext_softmax": {"lr": 1.0, "epoch": 25, "wordNgrams": 2, "loss": "softmax"},
}  # fmt: skip
ANNIF_ANALYZER = "snowball(english)"
ANNIF_BACKENDS = {
    "annif_tfidf": {"backend": "tfidf"},
    "annif_svc": {"backend": "svc"},
    "annif_omikuji": {
        "backend": "omikuji",
        "cluster_balanced": "False",
        "cluster_k": "100",
        "max_depth": "3",
    },
}
ENSEMBLE_SOURCES = ("annif_tfidf", "annif_svc", "annif_omikuji")
#: fastText's default thread count, kept on purpose: this build (fasttext-numpy2 0.10.4)
#: random-initialises only thread/10 of the input matrix (ten blocks, one per thread) and
#: leaves the rest as the memory was: zeros in a fresh process, garbage after an earlier
#: training in the same process (seen: 1.6e18), which then stops with "Encountered NaN"
#: (autotune's trials and final retrain train many models in one process). With >= 11
#: threads every block is initialised; on 2 cores it trains as fast as with 2.
FASTTEXT_THREADS = 12
#: what fastText's verbose autotune log prints for the best arguments
AUTOTUNE_ARGS = ("epoch", "lr", "dim", "minCount", "wordNgrams", "minn", "maxn", "bucket",
                 "dsub", "loss")  # fmt: skip


def say(message: str) -> None:
    print(f"peers: {message}", flush=True)


def read_ft(path: Path) -> list[tuple[list[str], str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        words = line.split()
        tags = [w[len(LABEL) :] for w in words if w.startswith(LABEL)]
        rows.append((tags, " ".join(w for w in words if not w.startswith(LABEL))))
    return rows


def _dense(label_rows: list[list[str]], prob_rows: list, labels: list[str]) -> np.ndarray:
    column = {t: j for j, t in enumerate(labels)}
    out = np.zeros((len(label_rows), len(labels)), dtype=np.float32)
    for i, (names, probs) in enumerate(zip(label_rows, prob_rows, strict=True)):
        for name, p in zip(names, probs, strict=True):
            out[i, column[name[len(LABEL) :]]] = p
    return out


@contextmanager
def _stdout_to(path: Path) -> Iterator[None]:
    """Send file descriptor 1 (fastText's C++ std::cout) to ``path`` for a while."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with path.open("wb") as sink:
            os.dup2(sink.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _autotune_log(text: str) -> tuple[dict[str, str], int, float]:
    """fastText's verbose autotune log → (best arguments, trials, best validation f1)."""
    best: dict[str, str] = {}
    trials, scores = 0, []
    in_best = False
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(" = "))
        if key == "Trial":
            trials = int(value)
        elif key == "currentScore" and value != "NaN":
            scores.append(float(value))
        elif key == "Best selected args":
            in_best = True
        elif in_best and key in AUTOTUNE_ARGS:
            best[key] = value
    return best, trials, max(scores, default=float("nan"))


def _autotune(kwargs: dict, seconds: int, workdir: Path) -> tuple[Any, dict]:
    """fastText autotune; if its final retrain fails, retrain its best arguments.

    Autotune skips trials that diverge, then retrains the best arguments at the end. With
    fewer than 11 threads that final retrain could stop with "Encountered NaN" after the
    whole search (uninitialised memory, see FASTTEXT_THREADS). Should it fail anyway, the
    verbose log names the best arguments, so they are retrained in a fresh model
    (autotune's seed first) instead of losing the search.
    """
    import fasttext

    log = workdir / "autotune.log"
    tuned = {**kwargs, "loss": "ova", "autotuneDuration": int(seconds), "verbose": 3}
    failure = None
    with _stdout_to(log):
        try:
            model = fasttext.train_supervised(**tuned)
        except RuntimeError as err:
            model, failure = None, str(err)
    best, trials, score = _autotune_log(log.read_text(encoding="utf-8", errors="replace"))
    info: dict = {"trials": trials, "best_validation_f1": score}
    if model is not None:
        return model, info
    if "NaN" not in (failure or "") or not best:
        raise RuntimeError(f"fastText autotune failed: {failure}")
    args: dict[str, Any] = {k: float(v) if k == "lr" else int(v) for k, v in best.items()
                            if k not in ("loss", "dsub")}  # fmt: skip
    args["loss"] = "ova"  # the log says "one-vs-all"; dsub only matters for quantising
    for seed in (0, 1, 2):  # 0 is autotune's own seed
        say(f"fasttext_autotune: autotune's final retrain failed ({failure}); retraining "
            f"its best arguments {args} with seed {seed}")  # fmt: skip
        try:
            model = fasttext.train_supervised(
                input=kwargs["input"], thread=kwargs["thread"], verbose=0, seed=seed, **args
            )
        except RuntimeError:
            continue
        info["final_retrain"] = (
            f"autotune's own final retrain failed ({failure}); its best arguments were "
            f"retrained in a fresh model with seed {seed}"
        )
        return model, info
    raise RuntimeError(f"fastText autotune: its best arguments {args} diverge in every retrain")


def run_fasttext(method: str, split: Path, test: list[str], autotune_seconds: int) -> dict:
    import fasttext

    # a fixed recipe has no use for the validation split: it trains on train + valid, as
    # Annif, the sklearn baseline and our refit do; autotune tunes against valid instead
    tuned = method == "fasttext_autotune"
    trained_on = "train.ft" if tuned else "train.ft + valid.ft"
    source = split / "train.ft"
    if not tuned:
        source = split / "train_valid.ft"
        source.write_text((split / "train.ft").read_text() + (split / "valid.ft").read_text())
    kwargs = {"input": str(source), "thread": FASTTEXT_THREADS, "verbose": 0}
    t0 = time.perf_counter()
    if tuned:
        kwargs["autotuneValidationFile"] = str(split / "valid.ft")
        model, tuning = _autotune(kwargs, autotune_seconds, split)
    else:
        model = fasttext.train_supervised(**kwargs, **FASTTEXT_SETTINGS[method])
    train_s = time.perf_counter() - t0
    labels = [t[len(LABEL) :] for t in model.labels]
    t0 = time.perf_counter()
    label_rows, prob_rows = model.predict(test, k=-1, threshold=0.0)
    scores = _dense(label_rows, prob_rows, labels)
    predict_s = time.perf_counter() - t0
    args = model.f.getArgs()
    names = ("lr", "epoch", "dim", "wordNgrams", "minn", "maxn", "bucket", "dsub", "minCount")
    settings = {n: getattr(args, n) for n in names}
    settings["loss"] = str(args.loss).rsplit(".", 1)[-1]
    settings["trained_on"] = trained_on
    settings["threads"] = FASTTEXT_THREADS
    if method == "fasttext_autotune":
        settings["autotune"] = {
            "validation": "valid.ft",
            "seconds": int(autotune_seconds),
            "metric": "f1 (default), autotunePredictions 1 (default)",
            **tuning,
        }
    return {"train_s": train_s, "predict_s": predict_s, "labels": labels, "scores": scores,
            "settings": settings}  # fmt: skip


def _punkt_dir(workdir: Path) -> str:
    """Make NLTK's Punkt loadable offline; returns which data the run used."""
    import nltk.data

    try:
        nltk.data.find("tokenizers/punkt_tab/english/")
        return "nltk punkt_tab data found on this machine"
    except LookupError:
        pass
    root = workdir / "nltk_data"
    lang = root / "tokenizers" / "punkt_tab" / "english"
    lang.mkdir(parents=True, exist_ok=True)
    for name in ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab"):
        (lang / name).write_text("", encoding="utf-8")
    nltk.data.path.insert(0, str(root))
    return "empty Punkt parameters (punkt_tab not available offline)"


class Annif:
    """One vocabulary, one corpus (train + valid), one projects.cfg, in a temp dir."""

    def __init__(self, workdir: Path, train_rows: list, jobs: int) -> None:
        import annif
        import annif.registry
        from annif.corpus import DocumentFileTSV

        annif.logger.setLevel(logging.ERROR)  # SVC warns once per multi-tag document
        self.workdir, self.jobs = workdir, jobs
        self.punkt = _punkt_dir(workdir)
        labels = sorted({t for tags, _ in train_rows for t in tags})
        self.uri = {t: URI_BASE + quote(t, safe="") for t in labels}
        vocab = workdir / "tags-vocab.tsv"
        vocab.write_text("".join(f"<{self.uri[t]}>\t{t}\n" for t in labels), encoding="utf-8")
        corpus = workdir / "train-valid.tsv"
        with corpus.open("w", encoding="utf-8") as f:
            for tags, text in train_rows:
                if tags and text:
                    uris = " ".join(f"<{self.uri[t]}>" for t in tags)
                    f.write(f"{text}\t{uris}\n")
        sections = []
        common = {
            "language": "en",
            "vocab": "tags",
            "analyzer": ANNIF_ANALYZER,
            "limit": str(len(labels)),
        }
        for name, params in ANNIF_BACKENDS.items():
            sections.append(self._section(name, {"name": name, **common, **params}))
        ensemble = {"name": "annif_ensemble", **common, "backend": "ensemble",
                    "sources": ",".join(ENSEMBLE_SOURCES)}  # fmt: skip
        sections.append(self._section("annif_ensemble", ensemble))
        self.config = workdir / "projects.cfg"
        self.config.write_text("\n".join(sections), encoding="utf-8")
        self.app = annif.create_flask_app("annif.default_config.Config")
        self.app.config["PROJECTS_CONFIG_PATH"] = str(self.config)
        self.app.config["DATADIR"] = str(workdir / "data")
        self.registry = annif.registry
        self._corpus_cls, self.corpus_path = DocumentFileTSV, str(corpus)
        t0 = time.perf_counter()
        from annif.vocab import VocabFileTSV

        with self.app.app_context():
            project = self.registry.get_project("annif_tfidf")
            project.vocab.load_vocabulary(VocabFileTSV(str(vocab), "en"))
            subjects = project.subjects
            self.labels = [""] * len(subjects)
            for t in labels:
                self.labels[subjects.by_uri(self.uri[t])] = t
        self.vocab_s = time.perf_counter() - t0
        self.train_s: dict[str, float] = {}
        self.n_train_docs = sum(1 for tags, text in train_rows if tags and text)
        self.n_multi = sum(1 for tags, text in train_rows if len(tags) > 1 and text)

    @staticmethod
    def _section(name: str, params: dict[str, str]) -> str:
        return f"[{name}]\n" + "".join(f"{k}={v}\n" for k, v in params.items())

    def train(self, name: str) -> float:
        if name == "annif_ensemble":
            for source in ENSEMBLE_SOURCES:
                if source not in self.train_s:
                    self.train(source)
            self.train_s[name] = sum(self.train_s[s] for s in ENSEMBLE_SOURCES)
            return self.train_s[name]
        with self.app.app_context():
            project = self.registry.get_project(name)
            corpus = self._corpus_cls(self.corpus_path, project.subjects)
            t0 = time.perf_counter()
            project.train(corpus, jobs=self.jobs)
            self.train_s[name] = time.perf_counter() - t0
        return self.train_s[name]

    def predict(self, name: str, texts: list[str], batch: int = 256) -> np.ndarray:
        from annif.corpus import Document

        parts = []
        with self.app.app_context():
            project = self.registry.get_project(name)
            for start in range(0, len(texts), batch):
                docs = [Document(text=t) for t in texts[start : start + batch]]
                parts.append(project.suggest(docs).array.toarray())
        if not parts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return np.vstack(parts).astype(np.float32)

    def settings(self, name: str) -> dict:
        params = (
            {"backend": "ensemble", "sources": list(ENSEMBLE_SOURCES), "weights": "equal"}
            if name == "annif_ensemble"
            else dict(ANNIF_BACKENDS[name])
        )
        out = {
            **params,
            "analyzer": ANNIF_ANALYZER,
            "punkt": self.punkt,
            "trained_on": "train.ft + valid.ft",
            "n_train_docs": self.n_train_docs,
            "vocab_load_s": round(self.vocab_s, 3),
        }
        if name in ("annif_svc", "annif_ensemble"):
            out["svc_note"] = (
                f"Annif's SVC is multi-class: each of the {self.n_multi} training docs with "
                "more than one tag is trained on one of them only (Annif takes the first id "
                "of the doc's subject set; ids follow the alphabetical vocabulary here)"
            )
        return out


def run_annif(peers: Annif, method: str, test: list[str]) -> dict:
    train_s = peers.train(method)
    say(f"{method}: trained in {train_s:.1f} s, predicting {len(test)} lines")
    t0 = time.perf_counter()
    scores = peers.predict(method, test)
    return {
        "train_s": train_s,
        "predict_s": time.perf_counter() - t0,
        "labels": peers.labels,
        "scores": scores,
        "settings": peers.settings(method),
    }


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for dist in ("fasttext-numpy2", "annif", "omikuji", "numpy", "scikit-learn", "nltk"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--autotune-seconds", type=int, default=300)
    parser.add_argument(
        "--threads",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="Annif/Omikuji jobs (fastText always runs its default 12 threads, see above)",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    test = [text for _, text in read_ft(args.split / "test.ft")]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result: dict = {
        "split": str(args.split),
        "n_test": len(test),
        "unscored": "pairs a method did not score are 0.0 in its scores matrix",
        "scores": "float32 .npy, shape (n_test, len(labels)), next to this file",
        "versions": versions(),
        "methods": {},
    }
    annif_peers = None
    with tempfile.TemporaryDirectory(prefix="annif-") as tmp:
        for method in args.methods:
            say(f"{method}: training on {args.split.name}")
            try:
                if method.startswith("fasttext"):
                    out = run_fasttext(method, args.split, test, args.autotune_seconds)
                else:
                    if annif_peers is None:
                        rows = read_ft(args.split / "train.ft") + read_ft(args.split / "valid.ft")
                        annif_peers = Annif(Path(tmp), rows, args.threads)
                    out = run_annif(annif_peers, method, test)
            except Exception as err:  # one peer failing must not lose the others
                traceback.print_exc()
                result["methods"][method] = {"error": f"{type(err).__name__}: {err}"}
                say(f"{method}: FAILED: {err}")
                continue
            npy = args.out.with_name(f"{args.out.stem}.{method}.npy")
            np.save(npy, out.pop("scores"))
            out["scores_file"] = npy.name
            result["methods"][method] = out
            say(f"{method}: train {out['train_s']:.1f} s, predict {out['predict_s']:.1f} s")
    args.out.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    say(f"wrote {args.out}")


if __name__ == "__main__":
    main()

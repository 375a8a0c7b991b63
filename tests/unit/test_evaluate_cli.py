"""`socialsuggest evaluate` on real labelled files, and the MLflow Project entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from socialsuggest.cli import app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cooking_slice(
    tmp_path_factory: pytest.TempPathFactory, datasets_dir: Path
) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("cooking")
    lines = (datasets_dir / "tags" / "cooking" / "train.ft").read_text().splitlines()
    (folder / "train.ft").write_text("\n".join(lines[:2500]) + "\n")
    (folder / "test.ft").write_text("\n".join(lines[2500:3000]) + "\n")
    return folder / "train.ft", folder / "test.ft"


@pytest.fixture(scope="module")
def small_slice(cooking_slice: tuple[Path, Path]) -> tuple[Path, Path]:
    """A fifth of the slice: for a test of the plumbing around the model, not of it."""
    train, test = cooking_slice
    folder = train.parent / "small"
    folder.mkdir(exist_ok=True)
    (folder / "train.ft").write_text("".join(train.read_text().splitlines(True)[:500]))
    (folder / "test.ft").write_text("".join(test.read_text().splitlines(True)[:100]))
    return folder / "train.ft", folder / "test.ft"


def test_evaluate_prints_every_mode_as_json(cooking_slice: tuple[Path, Path]) -> None:
    train, test = cooking_slice
    result = CliRunner().invoke(app, ["evaluate", "--train", str(train), "--test", str(test)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows"] == {"train": 2000, "valid": 500, "test": 500}  # last 20% validates
    for mode in ("model", "recent", "hybrid"):
        assert set(report[mode]) >= {"precision@1", "precision@3", "recall@3", "ndcg@3", "ndcg@5",
                                     "map@3", "hit_rate@3", "f2", "hamming_loss"}  # fmt: skip
    assert report["model"]["precision@1"] > report["recent"]["precision@1"]
    assert 0 < report["model"]["mean_tag_auc"] <= 1
    # cooking's questions keep the SVM, having compared it with the logistic words model
    scores = report["learner"]["validation_ndcg@3"]
    assert (
        report["learner"]["kept"] == "configured" and report["learner"]["loss"] == "squared_hinge"
    )
    assert set(scores) == {"configured", "logistic_words"}
    assert scores["configured"] > scores["logistic_words"]


def test_evaluate_without_the_choice_fits_the_configured_learner_only(
    cooking_slice: tuple[Path, Path],
) -> None:
    train, test = cooking_slice
    result = CliRunner().invoke(
        app, ["evaluate", "--train", str(train), "--test", str(test), "--no-choose-learner"]
    )
    assert result.exit_code == 0, result.output
    learner = json.loads(result.stdout)["learner"]
    knn = {k: learner.pop(k) for k in ("knn_weight", "knn_validation_ndcg@3")}
    assert learner == {"kept": "configured", "validation_ndcg@3": {}, "loss": "squared_hinge"}
    # the neighbour vote's weight is still chosen on validation, among the configured ones
    assert set(knn["knn_validation_ndcg@3"]) == {"0", "0.2", "0.35", "0.5"}
    assert f"{knn['knn_weight']:g}" in knn["knn_validation_ndcg@3"]


def test_evaluate_jsonl_and_csv_formats(tmp_path: Path, cooking_slice: tuple[Path, Path]) -> None:
    train, test = cooking_slice

    def convert(path: Path, fmt: str) -> Path:
        rows = []
        for line in path.read_text().splitlines():
            words = line.split()
            rows.append({"text": " ".join(w for w in words if not w.startswith("__label__")),
                         "tags": [w[9:] for w in words if w.startswith("__label__")]})  # fmt: skip
        out = tmp_path / f"{path.stem}.{fmt}"
        if fmt == "jsonl":
            out.write_text("".join(json.dumps(r) + "\n" for r in rows))
        else:
            import csv

            with open(out, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=["text", "tags"])
                writer.writeheader()
                writer.writerows({"text": r["text"], "tags": "|".join(r["tags"])} for r in rows)
        return out

    # one learner (the parsers are what differs; the choice has its own tests): the
    # comparison doubled this test's three fits
    once = ["--no-choose-learner"]
    reference = json.loads(
        CliRunner()
        .invoke(app, ["evaluate", "--train", str(train), "--test", str(test), *once])
        .stdout
    )
    for fmt in ("jsonl", "csv"):
        result = CliRunner().invoke(
            app,
            [
                "evaluate",
                "--train",
                str(convert(train, fmt)),
                "--test",
                str(convert(test, fmt)),
                "--format",
                fmt,
                *once,
            ],
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["model"]["ndcg@3"] == pytest.approx(
            reference["model"]["ndcg@3"]
        )


def test_evaluate_bad_input_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x", "tags": []}\n{broken\n')
    result = CliRunner().invoke(
        app, ["evaluate", "--train", str(bad), "--test", str(bad), "--format", "jsonl"]
    )
    assert result.exit_code == 2 and "bad.jsonl:2" in result.output
    missing = CliRunner().invoke(
        app, ["evaluate", "--train", str(tmp_path / "no.ft"), "--test", str(bad)]
    )
    assert missing.exit_code == 2 and "does not exist" in missing.output


@pytest.mark.slow
def test_mlflow_project_evaluate_entry_point(
    tmp_path: Path, small_slice: tuple[Path, Path]
) -> None:
    train, test = small_slice
    # only the run's own tracking store: no MLFLOW_* setting of the caller's environment
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env |= {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # fmt: skip
    result = subprocess.run(
        [str(Path(sys.executable).parent / "mlflow"), "run", str(REPO / "mlflow"), "-e", "evaluate",
         "--env-manager", "local", "-P", f"train={train}", "-P", f"test={test}"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"hit_rate@3"' in result.stdout

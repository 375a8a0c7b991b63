"""The CLI as users call it: the installed console script, help, exit codes, a real run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from socialsuggest.cli import app

COMMANDS = [
    [], ["config"], ["generate"], ["ingest"], ["run"], ["lake"], ["lake", "ls"], ["preprocess"],
    ["train"], ["evaluate"], ["serve"], ["models"], ["models", "ls"], ["models", "show"],
    ["models", "promote"], ["models", "rollback"],
]  # fmt: skip


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("SOCIALSUGGEST_HOME", str(tmp_path / "var"))
    monkeypatch.delenv("SOCIALSUGGEST_LAKE_ROOT", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the developer's server, if any
    return {**os.environ}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_console_script_is_installed(env: dict[str, str]) -> None:
    exe = Path(sys.executable).parent / "socialsuggest"  # beside the venv's python
    assert exe.is_file(), "the package's console script is installed in the venv"
    result = subprocess.run([exe, "config"], capture_output=True, text=True, env=env, check=True)
    shown = json.loads(result.stdout)
    assert shown["lake_root"] == env["SOCIALSUGGEST_HOME"] + "/lake"


def test_bad_input_exits_2_with_a_message(env: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner()
    bad_date = runner.invoke(app, ["generate", "--out", str(tmp_path / "g"), "--end", "tomorrow"])
    assert bad_date.exit_code == 2 and "--end" in bad_date.output
    missing = runner.invoke(app, ["ingest", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    unknown = runner.invoke(app, ["ingest", "--event-type", "fax", str(tmp_path)])
    assert unknown.exit_code == 2 and "event_type" in unknown.output
    zone = runner.invoke(app, ["lake", "ls", "scratch"])
    assert zone.exit_code == 2 and "zone" in zone.output
    usage = runner.invoke(app, ["generate", "--orgs", "0", "--out", str(tmp_path)])
    assert usage.exit_code == 2


def test_run_twice_ingests_once(env: dict[str, str]) -> None:
    runner = CliRunner()
    # the model stages are covered by tests/integration/test_tags_cycle.py
    args = ["run", "--once", "--ingest-only", "--orgs", "3", "--messages", "1500", "--days", "6"]
    args.append("--json")
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    ingest = summary["ingest"]
    assert summary["lake"]["orgs"] == 3
    assert summary["lake"]["raw"]["messages"] == ingest["written"]["messages"] > 1400
    assert sum(ingest["quarantined"].values()) == summary["generated_invalid"]
    second = json.loads(runner.invoke(app, args).stdout)
    assert (
        second["ingest"]["written"] == {}
        and second["ingest"]["duplicates_skipped"] == ingest["records_in"]
    )
    assert second["lake"] == summary["lake"]
    table = runner.invoke(app, ["lake", "ls"])
    assert "messages" in table.output and "posts" in table.output


def test_generate_then_ingest_commands(env: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "sample"
    gen = runner.invoke(
        app, ["generate", "--out", str(out), "--orgs", "2", "--messages", "400", "--days", "3"]
    )
    assert gen.exit_code == 0, gen.output
    assert (out / "manifest.json").is_file()
    result = runner.invoke(app, ["ingest", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["records_in"] == sum(
        json.loads((out / "manifest.json").read_text())["counts"].values()
    )


def test_unreachable_tracking_server_fails_fast(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from socialsuggest.registry import free_port

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    for args in (["models", "ls"], ["train"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1 and "not reachable" in result.output, args


def test_a_down_s3_store_is_named_with_its_url(env: dict[str, str], tmp_path: Path) -> None:
    """Fault injected for real: nothing listens on the endpoint's port."""
    from socialsuggest.registry import free_port

    sample = tmp_path / "one.jsonl"
    sample.write_text(
        json.dumps({"event_type": "tag_lifecycle", "org_id": "acme", "tag": "x",
                    "action": "created", "at": "2026-01-01T00:00:00Z"}) + "\n"
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{free_port()}"
    fault_env = {**env, "SOCIALSUGGEST_LAKE_ROOT": "s3://socialsuggest/lake",
                 "SOCIALSUGGEST_S3_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "x",
                 "AWS_SECRET_ACCESS_KEY": "y", "AWS_MAX_ATTEMPTS": "2"}  # fmt: skip
    exe = str(Path(sys.executable).parent / "socialsuggest")
    result = subprocess.run([exe, "ingest", str(sample)], env=fault_env, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 1
    assert f"S3 store at {endpoint}" in result.stderr and "Traceback" not in result.stderr

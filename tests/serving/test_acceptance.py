"""Acceptance of served suggestions: live (feedback → counts), daily (lake logs → MLflow,
the lake, a floor verdict) and the CLI, on one scenario of real traffic.

The scenario serves real suggestions from the shared registry over HTTP, sends a
known set of feedback (repeats, tags that were never suggested, another org's
request, unknown requests), stops the app (which flushes its request log into the
lake) and keeps what it saw; the expected numbers are derived from the responses.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from servers import running_app
from socialsuggest.cli import app as cli
from socialsuggest.config import Settings, load_settings
from socialsuggest.lake import Lake
from socialsuggest.pipeline.acceptance import AcceptanceBelowFloor, daily_acceptance_report
from socialsuggest.registry import ACCEPTANCE_EXPERIMENT, MlflowServer, Registry
from socialsuggest.serving import RequestLog
from socialsuggest.serving.acceptance import LiveAcceptance, daily_acceptance, wilson_interval
from socialsuggest.serving.app import create_app
from socialsuggest.serving.logs import FEEDBACK_SCHEMA, TAG_REQUESTS_SCHEMA

Slot = tuple[str, int, str]  # (org, model version, source)
SOURCES = ("model", "recent")


@dataclass
class Scenario:
    settings: Settings
    org_a: str
    org_b: str
    shown: dict[Slot, int]
    accepted: dict[Slot, int]
    live: dict[str, dict[str, Any]]  # org -> GET /v1/orgs/{org}/acceptance
    metrics: str
    feedback_statuses: list[int]
    accepted_a: int  # how many of org a's suggestions the feedback accepted, by design


def _tally(
    requests: list[dict[str, Any]], applied: dict[str, set[str]]
) -> tuple[dict[Slot, int], dict[Slot, int]]:
    """Expected shown / accepted per slot, straight from the served responses."""
    shown: dict[Slot, int] = {}
    accepted: dict[Slot, int] = {}
    for body in requests:
        for s in body["suggestions"]:
            slot = (body["org"], body["model_version"], s["source"])
            shown[slot] = shown.get(slot, 0) + 1
            if s["tag"] in applied.get(body["request_id"], set()):
                accepted[slot] = accepted.get(slot, 0) + 1
    return shown, accepted


@pytest.fixture(scope="module")
def scenario(
    tmp_path_factory: pytest.TempPathFactory,
    serving_mlflow: MlflowServer,
    serving_registry: Registry,
    orgs: list[str],
) -> Scenario:
    home = tmp_path_factory.mktemp("acceptance")
    settings = load_settings(home=home, mlflow_tracking_uri=serving_mlflow.url)
    request_log = RequestLog(Lake.from_settings(settings), flush_seconds=3600)
    org_a, org_b = orgs[0], orgs[1]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SOCIALSUGGEST_HOME", str(home))  # the cache's alerts, if any
        app = create_app(serving_registry, request_log=request_log)
        # stopping the app flushes its request log into the lake
        with (
            running_app(app, path="/healthz", stop_timeout=30) as url,
            httpx.Client(base_url=url, timeout=30) as client,
        ):

            def suggest(org: str, text: str) -> dict[str, Any]:
                done = client.post(f"/v1/orgs/{org}/tags:suggest", json={"text": text})
                assert done.status_code == 200, done.text
                body: dict[str, Any] = done.json()
                return body

            a = [suggest(org_a, t) for t in ("refund please", "my order is late",
                                             "love the new app", "cannot log in")]  # fmt: skip
            b = [suggest(org_b, t) for t in ("where is my parcel", "great service")]
            tags = [[s["tag"] for s in r["suggestions"]] for r in a]
            b_tags = [s["tag"] for s in b[0]["suggestions"]]
            feedback = [
                (org_a, a[0]["request_id"], [tags[0][0], "never-suggested"]),
                (org_a, a[0]["request_id"], [tags[0][0], *tags[0][1:2]]),  # repeat + one more
                (org_a, a[1]["request_id"], tags[1]),  # all of them
                (org_a, a[2]["request_id"], []),  # rejected everything
                (org_b, b[0]["request_id"], b_tags[-1:]),
                (org_a, b[1]["request_id"], b_tags),  # another org's request: no effect
                (org_a, uuid.uuid4().hex, tags[3]),  # a request this app never served
            ]
            statuses = [
                client.post(
                    f"/v1/orgs/{org}/feedback",
                    json={"request_id": rid, "accepted": accepted, "rejected": []},
                ).status_code
                for org, rid, accepted in feedback
            ]
            live = {
                org: client.get(f"/v1/orgs/{org}/acceptance").json()
                for org in (org_a, org_b, "no-traffic-org")
            }
            metrics = client.get("/metrics").text
    assert request_log.stats().pending_rows == 0  # shutdown flushed the log into the lake
    applied = {
        a[0]["request_id"]: set(tags[0][:2]),
        a[1]["request_id"]: set(tags[1]),
        b[0]["request_id"]: set(b_tags[-1:]),
    }
    shown, accepted = _tally([*a, *b], applied)
    accepted_a = len(set(tags[0][:2])) + len(set(tags[1]))
    return Scenario(settings, org_a, org_b, shown, accepted, live, metrics, statuses, accepted_a)


def _rate(accepted: int, shown: int) -> float | None:
    return accepted / shown if shown else None


def _expected_live(s: Scenario, org: str) -> dict[str, Any]:
    def counts(keep: Any) -> dict[str, Any]:
        shown = sum(n for slot, n in s.shown.items() if slot[0] == org and keep(slot))
        accepted = sum(n for slot, n in s.accepted.items() if slot[0] == org and keep(slot))
        return {"shown": shown, "accepted": accepted, "rate": _rate(accepted, shown)}

    versions = sorted({slot[1] for slot in s.shown if slot[0] == org})
    return {
        **counts(lambda slot: True),
        "org": org,
        "by_source": {src: counts(lambda slot, src=src: slot[2] == src) for src in SOURCES},
        "by_model_version": {
            str(v): {
                **counts(lambda slot, v=v: slot[1] == v),
                "by_source": {
                    src: counts(lambda slot, v=v, src=src: slot[1:] == (v, src)) for src in SOURCES
                },
            }
            for v in versions
        },
    }


def test_feedback_updates_live_acceptance_exactly(scenario: Scenario) -> None:
    assert scenario.feedback_statuses == [202] * 7  # unknown requests are still logged
    for org in (scenario.org_a, scenario.org_b):
        live = dict(scenario.live[org])
        since = datetime.fromisoformat(live.pop("since"))
        assert since <= datetime.now(UTC)
        assert live == _expected_live(scenario, org)
    # first request: its first two tags (one of them accepted twice); second: all of them
    assert scenario.live[scenario.org_a]["accepted"] == scenario.accepted_a
    assert scenario.live[scenario.org_b]["accepted"] == 1
    nobody = scenario.live["no-traffic-org"]
    assert (nobody["shown"], nobody["accepted"], nobody["rate"], nobody["by_model_version"]) == (
        0, 0, None, {},
    )  # fmt: skip


def test_metrics_agree_with_live_acceptance(scenario: Scenario) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    shown: dict[Slot, float] = {}
    accepted: dict[Slot, float] = {}
    rates: dict[tuple[str, str], float] = {}
    feedback: dict[str, float] = {}
    for family in text_string_to_metric_families(scenario.metrics):
        for s in family.samples:
            labels = s.labels
            if s.name in ("socialsuggest_suggestions_shown_total",
                          "socialsuggest_suggestions_accepted_total"):  # fmt: skip
                slot = (labels["org"], int(labels["model_version"]), labels["source"])
                (shown if "shown" in s.name else accepted)[slot] = s.value
            elif s.name == "socialsuggest_acceptance_rate":
                rates[(labels["org"], labels["source"])] = s.value
            elif s.name == "socialsuggest_feedback_total":
                feedback[labels["outcome"]] = s.value
    assert shown == scenario.shown
    assert {k: v for k, v in accepted.items() if v} == scenario.accepted
    for (org, source), rate in rates.items():
        assert rate == pytest.approx(scenario.live[org]["by_source"][source]["rate"])
    assert feedback == {"matched": 5, "unknown_request": 2}


def _day(settings: Settings) -> date:
    (day,) = {f.dt for f in Lake.from_settings(settings).files("logs", "tag_requests")}
    return day


def test_daily_report_from_the_lake_logs_goes_to_mlflow_and_the_lake(
    scenario: Scenario, serving_registry: Registry
) -> None:
    day = _day(scenario.settings)
    outcome = daily_acceptance_report(
        scenario.settings, day, registry=serving_registry, floor=0.0, min_shown=1
    )

    rows = {(r.org, r.model_version, r.source): r.tally for r in outcome.report.rows}
    assert {slot: t.shown for slot, t in rows.items()} == scenario.shown
    assert {slot: t.accepted for slot, t in rows.items() if t.accepted} == scenario.accepted
    assert outcome.report.requests == 6 and outcome.report.unmatched_feedback == 2
    assert outcome.below_floor == {}

    stored = json.loads(Lake.from_settings(scenario.settings).storage.get(outcome.report_path))
    assert outcome.report_path == f"audit/acceptance/{day.isoformat()}.json"
    assert stored["passed"] is True and stored["shown"] == sum(scenario.shown.values())
    org_a = stored["orgs"][scenario.org_a]
    a_shown = sum(n for slot, n in scenario.shown.items() if slot[0] == scenario.org_a)
    a_accepted = sum(n for slot, n in scenario.accepted.items() if slot[0] == scenario.org_a)
    assert (org_a["shown"], org_a["accepted"]) == (a_shown, a_accepted)
    assert org_a["ci95_low"] < org_a["rate"] < org_a["ci95_high"]

    run_id = outcome.mlflow_run.rsplit("/", 1)[-1]
    run = serving_registry.client.get_run(run_id)
    experiment = serving_registry.client.get_experiment(run.info.experiment_id)
    assert experiment.name == ACCEPTANCE_EXPERIMENT and run.info.status == "FINISHED"
    metrics = run.data.metrics
    assert metrics[f"org.{scenario.org_a}.shown"] == a_shown
    assert metrics[f"org.{scenario.org_a}.accepted"] == a_accepted
    for (org, version, source), n in scenario.shown.items():
        assert metrics[f"org.{org}.v{version}.{source}.shown"] == n
        assert metrics[f"org.{org}.v{version}.{source}.accepted"] == scenario.accepted.get(
            (org, version, source), 0
        )
    assert run.data.tags["day"] == day.isoformat() and run.data.tags["passed"] == "true"


def test_daily_report_fails_below_the_floor_naming_only_orgs_with_enough_suggestions(
    scenario: Scenario, serving_registry: Registry
) -> None:
    day = _day(scenario.settings)
    a_shown = sum(n for slot, n in scenario.shown.items() if slot[0] == scenario.org_a)
    b_shown = sum(n for slot, n in scenario.shown.items() if slot[0] == scenario.org_b)
    assert a_shown > b_shown  # org b is below min_shown: reported, not judged
    with pytest.raises(AcceptanceBelowFloor) as failed:
        daily_acceptance_report(
            scenario.settings, day, registry=serving_registry, floor=0.99, min_shown=a_shown
        )
    assert failed.value.orgs == [scenario.org_a]
    assert scenario.org_a in str(failed.value) and scenario.org_b not in str(failed.value)
    assert "0.99" in str(failed.value) and failed.value.outcome.report_path in str(failed.value)
    stored = json.loads(
        Lake.from_settings(scenario.settings).storage.get(failed.value.outcome.report_path)
    )
    assert stored["passed"] is False and stored["below_floor"] == [scenario.org_a]


def test_cli_report_exits_1_below_the_floor_and_prints_json(
    scenario: Scenario, serving_mlflow: MlflowServer
) -> None:
    day = _day(scenario.settings).isoformat()
    env = {
        "SOCIALSUGGEST_HOME": str(scenario.settings.home),
        "SOCIALSUGGEST_LAKE_ROOT": scenario.settings.lake_root,
        "MLFLOW_TRACKING_URI": serving_mlflow.url,
        "SOCIALSUGGEST_ACCEPTANCE_MIN_SHOWN": "1",
    }
    runner = CliRunner()
    below = runner.invoke(
        cli,
        ["acceptance", "report", "--day", day],
        env={**env, "SOCIALSUGGEST_ACCEPTANCE_FLOOR": "0.99"},
    )
    assert below.exit_code == 1, below.output
    assert scenario.org_a in below.output and scenario.org_b in below.output
    assert "below the floor" in below.output

    passed = runner.invoke(
        cli,
        ["acceptance", "report", "--day", day, "--json"],
        env={**env, "SOCIALSUGGEST_ACCEPTANCE_FLOOR": "0.0"},
    )
    assert passed.exit_code == 0, passed.output
    report = json.loads(passed.stdout)
    assert report["passed"] is True and report["day"] == day
    assert report["shown"] == sum(scenario.shown.values())
    assert report["accepted"] == sum(scenario.accepted.values())

    bad = runner.invoke(cli, ["acceptance", "report", "--day", "yesterday"], env=env)
    assert bad.exit_code == 2 and "--day" in bad.output


# ---- the pure parts, on hand-made tables ----------------------------------------------
def _requests(rows: list[tuple[str, str, int, list[tuple[str, str]]]]) -> pa.Table:
    now = datetime(2026, 10, 5, 12, tzinfo=UTC)
    return pa.Table.from_pylist(
        [
            {
                "request_id": rid,
                "org_id": org,
                "received_at": now,
                "text": "x",
                "network": "twitter",
                "message_type": "mention",
                "k": len(tags),
                "model_version": version,
                "latency_ms": 1.0,
                "suggestions": [{"tag": t, "score": 0.5, "source": src} for t, src in tags],
            }
            for rid, org, version, tags in rows
        ],
        schema=TAG_REQUESTS_SCHEMA,
    )


def _feedback(rows: list[tuple[str, str, list[str]]]) -> pa.Table:
    now = datetime(2026, 10, 5, 13, tzinfo=UTC)
    return pa.Table.from_pylist(
        [
            {
                "request_id": rid,
                "org_id": org,
                "received_at": now,
                "accepted": accepted,
                "rejected": [],
            }
            for rid, org, accepted in rows
        ],
        schema=FEEDBACK_SCHEMA,
    )


def test_daily_acceptance_counts_by_org_version_and_source() -> None:
    requests = _requests(
        [
            ("r1", "acme", 3, [("billing", "model"), ("refund", "model"), ("vip", "recent")]),
            ("r1", "acme", 3, [("billing", "model"), ("refund", "model"), ("vip", "recent")]),
            ("r2", "acme", 4, [("billing", "model"), ("shipping", "recent")]),
            ("r3", "beta", 1, [("hello", "model")]),
        ]
    )
    feedback = _feedback(
        [
            ("r1", "acme", ["billing", "not-suggested"]),
            ("r1", "acme", ["billing", "vip"]),  # a repeat counts each tag once
            ("r2", "acme", ["shipping"]),
            ("r3", "acme", ["hello"]),  # beta's request, acme's feedback: no match
            ("r9", "beta", ["hello"]),  # never served that day
        ]
    )
    report = daily_acceptance(requests, feedback)
    rows = {(r.org, r.model_version, r.source): (r.tally.shown, r.tally.accepted)
            for r in report.rows}  # fmt: skip
    assert rows == {
        ("acme", 3, "model"): (2, 1),
        ("acme", 3, "recent"): (1, 1),
        ("acme", 4, "model"): (1, 0),
        ("acme", 4, "recent"): (1, 1),
        ("beta", 1, "model"): (1, 0),
    }
    assert (report.requests, report.duplicate_requests) == (3, 1)
    assert (report.feedback, report.unmatched_feedback) == (5, 2)
    orgs = report.orgs()
    assert (orgs["acme"].shown, orgs["acme"].accepted, orgs["acme"].rate) == (5, 3, 0.6)
    assert report.below_floor(0.7, min_shown=5) == {"acme": orgs["acme"]}
    assert report.below_floor(0.7, min_shown=6) == {}  # too few to judge
    assert report.below_floor(0.5, min_shown=1) == {"beta": orgs["beta"]}  # 0 of 1


def test_wilson_interval_matches_published_values() -> None:
    low, high = wilson_interval(8, 10)  # type: ignore[misc]
    assert (round(low, 3), round(high, 3)) == (0.49, 0.943)  # Wilson (1927); Newcombe (1998)
    low, high = wilson_interval(0, 10)  # type: ignore[misc]
    assert low == 0.0 and round(high, 3) == 0.278
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError, match="accepted"):
        wilson_interval(3, 2)


def test_live_acceptance_forgets_the_oldest_requests_beyond_its_capacity() -> None:
    live = LiveAcceptance(capacity=2)
    for rid in ("r1", "r2", "r3"):
        live.served(rid, "acme", 7, [{"tag": "billing", "source": "model"}])
    assert live.remembered == 2 and live.forgotten == 1
    assert live.feedback("r1", "acme", ["billing"]) is None  # forgotten: cannot count
    assert live.feedback("r3", "beta", ["billing"]) is None  # another org's request
    assert live.feedback("r3", "acme", ["billing", "billing"]) == 1
    assert live.feedback("r3", "acme", ["billing"]) == 0  # already counted
    report = live.report("acme")
    assert (report.shown, report.accepted) == (3, 1)
    assert report.by_model_version["7"].by_source["model"].rate == pytest.approx(1 / 3)
    assert (live.feedback_matched, live.feedback_unknown) == (2, 2)


def test_an_empty_day_reports_nothing_and_passes(
    tmp_path: Path, serving_registry: Registry
) -> None:
    settings = load_settings(home=tmp_path / "var")
    outcome = daily_acceptance_report(
        settings, date(2026, 10, 5), registry=serving_registry, floor=1.0, min_shown=1
    )
    assert outcome.report.rows == () and outcome.below_floor == {}
    stored = json.loads(Lake.from_settings(settings).storage.get(outcome.report_path))
    assert stored["shown"] == 0 and stored["rate"] is None and stored["passed"] is True

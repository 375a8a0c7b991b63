"""The Prometheus alert rules name only metrics and labels the app really exposes.

A rule over a metric that does not exist never fires: it fails silent. So the rule
file is parsed and every ``socialsuggest_*`` name in each ``expr`` (and every label it
matches, groups by or prints) is looked up in the ``/metrics`` of a real app after
traffic that exercises every series; renaming a metric or a label breaks this test.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from socialsuggest.config import load_settings
from socialsuggest.lake import Lake
from socialsuggest.registry import Registry
from socialsuggest.serving import RequestLog
from socialsuggest.serving.app import create_app

RULES = Path(__file__).resolve().parents[2] / "infra" / "prometheus" / "alerts.yml"
METRIC = re.compile(r"\bsocialsuggest_[a-zA-Z0-9_:]*")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
TEMPLATE_LABEL = re.compile(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)")


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    found = [rule for group in document["groups"] for rule in group["rules"]]
    assert found, "no rules in the file"
    return found


def exposed(url: str, org: str) -> dict[str, set[str]]:
    """Sample name → label names of the app's /metrics after traffic touching every
    series: a suggestion, feedback accepting one of its tags, an error, model loads."""
    with httpx.Client(base_url=url, timeout=30) as client:
        served = client.post(f"/v1/orgs/{org}/tags:suggest", json={"text": "refund please"})
        assert served.status_code == 200, served.text
        body = served.json()
        feedback = client.post(
            f"/v1/orgs/{org}/feedback",
            json={"request_id": body["request_id"], "accepted": [body["suggestions"][0]["tag"]]},
        )
        assert feedback.status_code == 202
        assert client.post("/v1/orgs/nobody/tags:suggest", json={"text": "x"}).status_code == 404
        text = client.get("/metrics").text
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def problems(rule: dict[str, Any], exposed: dict[str, set[str]]) -> list[str]:
    """What is wrong with one rule: unknown metrics, unknown labels, no severity."""
    name, expr = rule["alert"], rule["expr"]
    used = set(METRIC.findall(expr))
    if not used:
        return [f"{name}: its expr uses no socialsuggest metric"]
    found = []
    missing = used - exposed.keys()
    if missing:
        found.append(f"{name}: metrics not exposed by /metrics: {sorted(missing)}")
    labels = set().union(*(exposed.get(metric, set()) for metric in used))
    wanted = set(MATCHER.findall(expr))
    for group in GROUPING.findall(expr):
        wanted |= {label.strip() for label in group.split(",") if label.strip()}
    for text in rule.get("annotations", {}).values():
        wanted |= set(TEMPLATE_LABEL.findall(text))
    if wanted - labels:
        found.append(f"{name}: labels not on its metrics: {sorted(wanted - labels)}")
    if rule.get("labels", {}).get("severity") not in {"page", "ticket"}:
        found.append(f"{name}: severity must be page or ticket")
    return found


def test_every_rule_uses_only_metrics_and_labels_the_app_exposes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    serving_registry: Registry,
    orgs: list[str],
    serve: Callable[[FastAPI], str],
) -> None:
    monkeypatch.setenv("SOCIALSUGGEST_HOME", str(tmp_path / "var"))
    lake = Lake.from_settings(load_settings(home=tmp_path / "var"))
    url = serve(create_app(serving_registry, request_log=RequestLog(lake, flush_seconds=3600)))
    metrics = exposed(url, orgs[0])

    assert [p for rule in rules() for p in problems(rule, metrics)] == []
    # and the check can fail: a renamed metric or label is reported
    renamed = {
        "alert": "Renamed",
        "expr": 'sum by (org) (rate(socialsuggest_http_requests_totals{code="500"}[5m]))',
        "labels": {"severity": "page"},
    }
    assert problems(renamed, metrics) == [
        "Renamed: metrics not exposed by /metrics: ['socialsuggest_http_requests_totals']",
        "Renamed: labels not on its metrics: ['code', 'org']",
    ]


def test_the_rules_cover_errors_latency_acceptance_and_reloads() -> None:
    exprs = " ".join(rule["expr"] for rule in rules())
    for metric in (
        "socialsuggest_http_requests_total",
        "socialsuggest_http_request_duration_seconds_bucket",
        "socialsuggest_suggestions_accepted_total",
        "socialsuggest_suggestions_shown_total",
        "socialsuggest_model_reloads_total",
    ):
        assert metric in exprs

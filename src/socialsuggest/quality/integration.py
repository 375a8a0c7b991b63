"""Integration gate: the registered candidate, booted in the serving app, must answer.

The model gates judge metrics computed in the training process; this gate judges the
*artifact* as serving will use it: the version is loaded from the registry (pinned
requirements, pyfunc wrapper, pickled model), mounted in the real FastAPI app
in-process, and sent golden requests through HTTP. It catches what metrics cannot:
an artifact that does not load, a wrapper that breaks on edge-case input (empty after
cleaning, emoji only, the longest allowed text), malformed responses, and latency far
beyond budget. The golden texts are the candidate's own test messages (held in memory
only) plus fixed edge cases.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from socialsuggest.registry import Registry, VersionInfo

EDGE_CASES: tuple[dict[str, Any], ...] = (
    {"text": "!!!", "network": "twitter", "message_type": "mention"},
    {"text": "🙂🙂🙂", "network": "instagram", "message_type": "comment"},
    {"text": "où est ma commande ? " * 20, "network": "facebook", "message_type": "direct_message"},
    {"text": "x" * 10_000, "network": "twitter", "message_type": "mention"},
)


@dataclass
class IntegrationResult:
    passed: bool
    requests: int
    p95_ms: float
    reasons: list[str] = field(default_factory=list)

    def as_tags(self) -> dict[str, str]:
        return {
            "integration.passed": str(self.passed).lower(),
            "integration.requests": str(self.requests),
            "integration.p95_ms": f"{self.p95_ms:.1f}",
            "integration.reasons": "; ".join(self.reasons)[:5000],
        }


def integration_gate(
    registry: Registry,
    info: VersionInfo,
    golden: Sequence[dict[str, Any]] = (),
    *,
    k: int = 3,
    latency_budget_ms: float = 250.0,
) -> IntegrationResult:
    """Boot ``info`` in the serving app in-process and check every golden answer."""
    from fastapi.testclient import TestClient

    from socialsuggest.serving.app import create_app
    from socialsuggest.serving.cache import ModelCache

    org = info.name.split(".", 1)[1]
    family = info.name.split(".", 1)[0]
    cache = ModelCache(registry, family=family)
    loaded = cache.load(info)
    if not loaded.ok:
        return IntegrationResult(False, 0, 0.0, [f"load: {loaded.error}"])
    requests = [*golden, *EDGE_CASES]
    reasons: list[str] = []
    latencies: list[float] = []
    with TestClient(create_app(registry, family=family, cache=cache)) as client:
        for number, body in enumerate(requests):
            started = time.perf_counter()
            response = client.post(f"/v1/orgs/{org}/tags:suggest", json={**body, "k": k})
            latencies.append((time.perf_counter() - started) * 1000)
            problem = _check(response.status_code, response.json(), info.version, k)
            if problem:
                reasons.append(f"request {number}: {problem}")
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    if p95 > latency_budget_ms:
        reasons.append(f"latency: p95 {p95:.1f} ms > budget {latency_budget_ms:.0f} ms")
    return IntegrationResult(not reasons, len(requests), p95, reasons[:20])


def _check(status: int, body: Any, version: int, k: int) -> str | None:
    if status != 200:
        return f"HTTP {status}: {str(body)[:200]}"
    if body.get("model_version") != version:
        return f"served version {body.get('model_version')} instead of {version}"
    suggestions = body.get("suggestions")
    if not isinstance(suggestions, list) or len(suggestions) > k:
        return f"suggestions: expected a list of at most {k}, got {str(suggestions)[:200]}"
    for item in suggestions:
        if not item.get("tag") or not 0.0 <= float(item.get("score", -1)) <= 1.0:
            return f"malformed suggestion {item}"
        if item.get("source") not in ("model", "recent"):
            return f"unknown source {item.get('source')!r}"
    if len({item["tag"] for item in suggestions}) != len(suggestions):
        return "duplicate tags in one answer"
    return None

"""Model gates: what a candidate must show before it may replace production.

Per-tag gating (AUC confidence-interval lower bound) lives in the model family,
because it decides which tags the model may suggest at all. This module decides
about the *whole* candidate: it needs at least one enabled tag, and on the same
test window its hybrid hit-rate@3 and NDCG@3 may not be worse than production's
by more than a tolerance. Comparing on the same window matters: a later window
can be easier or harder, and only a same-data comparison isolates the model. For the
same reason the tag family scores production with the candidate's archived tags off
(``pipeline.tags_cycle``): an archived tag is the org's decision, which no drop in
metrics on messages still carrying it may veto.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class GateConfig:
    tolerance: float = 0.02  # absolute drop allowed on each compared metric
    compared: tuple[str, ...] = ("hit_rate@3", "ndcg@3")
    min_enabled_tags: int = 1
    #: p95 of the integration gate's golden requests, against the registered artifact
    #: (wall clock, so it depends on the machine: ``Settings.gate_latency_budget_ms``)
    latency_budget_ms: float = 250.0

    def budgeted(self, latency_budget_ms: float) -> GateConfig:
        """The same gates with the deployment's latency budget."""
        return replace(self, latency_budget_ms=latency_budget_ms)


@dataclass
class GateResult:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    checks: dict[str, float] = field(default_factory=dict)

    def as_tags(self) -> dict[str, str]:
        return {f"gate.{k}": f"{v:.4f}" for k, v in self.checks.items()}


def model_gate(
    *,
    enabled_tags: int,
    candidate: Mapping[str, float],
    production: Mapping[str, float] | None,
    config: GateConfig | None = None,
) -> GateResult:
    """Accept or reject a candidate; every rejection reason names the metric and numbers."""
    config = config or GateConfig()
    reasons: list[str] = []
    checks: dict[str, float] = {"enabled_tags": float(enabled_tags)}
    if enabled_tags < config.min_enabled_tags:
        reasons.append(
            f"enabled_tags: {enabled_tags} < {config.min_enabled_tags} "
            "(no tag passed its AUC lower-bound gate)"
        )
    for metric in config.compared:
        if metric not in candidate:
            reasons.append(f"{metric}: missing from the candidate's evaluation")
            continue
        checks[f"candidate.{metric}"] = candidate[metric]
        if production is None or metric not in production:
            continue
        checks[f"production.{metric}"] = production[metric]
        drop = production[metric] - candidate[metric]
        if drop > config.tolerance:
            reasons.append(
                f"{metric}: {candidate[metric]:.4f} vs production {production[metric]:.4f} "
                f"(drop {drop:.4f} > tolerance {config.tolerance})"
            )
    return GateResult(passed=not reasons, reasons=reasons, checks=checks)

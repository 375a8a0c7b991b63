"""Quality: data validation suites and model gates."""

from socialsuggest.quality.gates import GateConfig, GateResult, model_gate

__all__ = ["GateConfig", "GateResult", "model_gate"]

"""The platform's main job, composed of the stage packages (CLI, DAGs, tests call it)."""

from socialsuggest.pipeline.daily import CycleSummary, ensure_sample_data, run_cycle

__all__ = ["CycleSummary", "ensure_sample_data", "run_cycle"]

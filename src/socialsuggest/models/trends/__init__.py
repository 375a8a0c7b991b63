"""Trending hashtags: per-window growth against own baseline and others', grouped,
damped for bot bursts, filtered, with a time to live after the peak."""

from socialsuggest.models.trends.detector import (
    DEFAULT_BLOCKED,
    Trend,
    TrendConfig,
    TrendDetector,
    canonical,
    trend_names,
)
from socialsuggest.models.trends.evaluate import LabelRule, evaluate_trends, label_trends

__all__ = [
    "DEFAULT_BLOCKED",
    "LabelRule",
    "Trend",
    "TrendConfig",
    "TrendDetector",
    "canonical",
    "evaluate_trends",
    "label_trends",
    "trend_names",
]

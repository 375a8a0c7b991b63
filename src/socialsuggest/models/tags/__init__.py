"""Tag suggestions: per-tag logistic regressions gated by AUC, topped up with recent tags."""

from socialsuggest.models.tags.config import TagModelConfig
from socialsuggest.models.tags.model import Mode, Reason, Suggestion, TagModel, TagStats

__all__ = ["Mode", "Reason", "Suggestion", "TagModel", "TagModelConfig", "TagStats"]

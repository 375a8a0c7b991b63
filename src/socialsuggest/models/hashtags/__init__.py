"""Hashtag suggestion for drafted posts: skip-gram word and hashtag embeddings."""

from socialsuggest.models.hashtags.evaluate import evaluate_hashtags
from socialsuggest.models.hashtags.model import (
    HashtagModel,
    HashtagModelConfig,
    HashtagSuggestion,
)
from socialsuggest.models.hashtags.text import Draft, parse_draft

__all__ = [
    "Draft",
    "HashtagModel",
    "HashtagModelConfig",
    "HashtagSuggestion",
    "evaluate_hashtags",
    "parse_draft",
]

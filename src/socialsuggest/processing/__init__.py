"""Spark preprocessing: text cleaning, per-org examples, splits, incremental bookkeeping."""

from socialsuggest.processing.lifecycle import TagLifecycle, read_tag_events
from socialsuggest.processing.splits import (
    archived_tags,
    load_examples,
    load_tag_lifecycle,
    time_split,
)
from socialsuggest.processing.tags import (
    PROCESSED_SCHEMA,
    STATE_KEY,
    PreprocessReport,
    load_state,
    preprocess_tags,
)
from socialsuggest.processing.text import clean_series, clean_text, lemma

__all__ = [
    "PROCESSED_SCHEMA",
    "STATE_KEY",
    "PreprocessReport",
    "TagLifecycle",
    "archived_tags",
    "clean_series",
    "clean_text",
    "lemma",
    "load_examples",
    "load_state",
    "load_tag_lifecycle",
    "preprocess_tags",
    "read_tag_events",
    "time_split",
]

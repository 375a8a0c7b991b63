"""Event schemas (typed, versioned) and their validation."""

from socialsuggest.events.schemas import (
    DATASETS,
    LATEST,
    REGISTRY,
    Event,
    MessageType,
    MessageV1,
    Network,
    PostV1,
    SavedReplyChosenV1,
    TagApplied,
    TagLifecycleV1,
)
from socialsuggest.events.validation import EventValidationError, FieldError, parse_event

__all__ = [
    "DATASETS",
    "LATEST",
    "REGISTRY",
    "Event",
    "EventValidationError",
    "FieldError",
    "MessageType",
    "MessageV1",
    "Network",
    "PostV1",
    "SavedReplyChosenV1",
    "TagApplied",
    "TagLifecycleV1",
    "parse_event",
]

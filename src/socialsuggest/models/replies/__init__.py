"""Suggested replies: rank an org's saved replies for an inbound message; bootstrap
labels from the org's outgoing replies when no choice has been recorded yet."""

from socialsuggest.models.replies.bootstrap import (
    Bootstrap,
    BootstrapConfig,
    Template,
    bootstrap_labels,
    export_review,
    import_review,
    tokenise_names,
)
from socialsuggest.models.replies.model import (
    ReplyModelConfig,
    ReplyRanker,
    downsample,
    evaluate_replies,
)

__all__ = [
    "Bootstrap",
    "BootstrapConfig",
    "ReplyModelConfig",
    "ReplyRanker",
    "Template",
    "bootstrap_labels",
    "downsample",
    "evaluate_replies",
    "export_review",
    "import_review",
    "tokenise_names",
]

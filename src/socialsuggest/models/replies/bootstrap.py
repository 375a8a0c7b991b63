"""Labels for the reply ranker before any "saved reply chosen" event exists.

What the original team did with an org's outgoing replies: agents already answer
alike, by hand, so similar replies are one template waiting to be saved.

1. Names are tokenised (``<name>``: a greeting's or thanks' capitalised word, an
   @mention) so "Hi Anna, ..." and "Hi Bob, ..." are the same reply.
2. DBSCAN on the normalised Levenshtein distance between replies groups them; noise
   points belong to no template.
3. Each cluster is scored by the mean fuzz ratio of its members to its centroid (the
   medoid: the member nearest all others); a cluster below ``min_cluster_score`` is
   not coherent enough to become a template.
4. Every reply is then scored against every accepted template: at or above
   ``auto_label`` (90) it is labelled with the template, below ``unlabelled`` (70) it
   is left unlabelled, and in between it goes to a human review queue
   (:func:`export_review` / :func:`import_review`: a CSV round trip).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein
from sklearn.cluster import DBSCAN

NAME = "<name>"
_GREETING = re.compile(
    r"\b((?i:hi|hello|hey|dear|thanks|thank you|sorry|welcome|cheers)),?\s+([A-Z][a-z]+)\b"
)
#: A capitalised word inside a sentence, right before punctuation: "sorry for the wait
#: Pia." -- a name far more often than not in a reply.
_ADDRESSED = re.compile(r"(?<=[a-z] )(?!I\b)[A-Z][a-z]+(?=[,.!?])")
_MENTION = re.compile(r"@\w+")
_SIGNOFF = re.compile(r"([-–~^]\s*)([A-Z][a-z]+)\s*$")
REVIEW_COLUMNS = ("reply_id", "text", "template_id", "template", "score", "label")


@dataclass(frozen=True)
class BootstrapConfig:
    #: DBSCAN radius in normalised Levenshtein distance (0 = same text, 1 = nothing alike).
    eps: float = 0.3
    min_samples: int = 3
    #: A cluster becomes a template when its members' mean fuzz ratio to the medoid is
    #: at least this.
    min_cluster_score: float = 80.0
    auto_label: float = 90.0
    unlabelled: float = 70.0
    #: At most this many replies are clustered (pairwise distances are quadratic).
    max_replies: int = 3000


@dataclass(frozen=True)
class Template:
    template_id: str
    text: str
    size: int
    score: float


@dataclass
class Bootstrap:
    templates: list[Template]
    #: reply index -> template id, for replies at or above ``auto_label``.
    labels: dict[int, str] = field(default_factory=dict)
    #: (reply index, template id, score) for replies between the two thresholds.
    review: list[tuple[int, str, float]] = field(default_factory=list)
    unlabelled: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "templates": len(self.templates),
            "auto_labelled": len(self.labels),
            "to_review": len(self.review),
            "unlabelled": len(self.unlabelled),
        }


def tokenise_names(text: str) -> str:
    """Replace the names a reply addresses or signs with ``<name>``."""
    text = _MENTION.sub(NAME, text)
    text = _GREETING.sub(lambda m: f"{m.group(1)} {NAME}", text)
    text = _ADDRESSED.sub(NAME, text)
    return _SIGNOFF.sub(lambda m: f"{m.group(1)}{NAME}", text.strip())


def _medoid(members: np.ndarray, distances: np.ndarray) -> int:
    block = distances[np.ix_(members, members)]
    return int(members[int(np.argmin(block.sum(axis=1)))])


def bootstrap_labels(replies: Sequence[str], config: BootstrapConfig | None = None) -> Bootstrap:
    """Templates from clusters of similar replies, and a label or a verdict per reply."""
    config = config or BootstrapConfig()
    texts = [tokenise_names(t) for t in replies[: config.max_replies]]
    if len(texts) < config.min_samples:
        return Bootstrap([], unlabelled=list(range(len(replies))))
    distances = process.cdist(
        texts, texts, scorer=Levenshtein.normalized_distance, dtype=np.float32, workers=1
    )
    clusters = DBSCAN(eps=config.eps, min_samples=config.min_samples, metric="precomputed")
    assignment = clusters.fit_predict(distances)
    templates: list[Template] = []
    for label in sorted(set(assignment) - {-1}):
        members = np.flatnonzero(assignment == label)
        centre = _medoid(members, distances)
        score = float(np.mean([fuzz.ratio(texts[centre], texts[m]) for m in members]))
        if score >= config.min_cluster_score:
            templates.append(
                Template(f"tpl-{len(templates):03d}", texts[centre], len(members), round(score, 1))
            )
    result = Bootstrap(templates)
    if not templates:
        result.unlabelled = list(range(len(replies)))
        return result
    for i, text in enumerate(tokenise_names(t) for t in replies):
        best = process.extractOne(text, [t.text for t in templates], scorer=fuzz.ratio)
        assert best is not None
        _, score, index = best
        template_id = templates[index].template_id
        if score >= config.auto_label:
            result.labels[i] = template_id
        elif score < config.unlabelled:
            result.unlabelled.append(i)
        else:
            result.review.append((i, template_id, round(float(score), 1)))
    return result


def export_review(result: Bootstrap, replies: Sequence[str], reply_ids: Sequence[str]) -> str:
    """The review queue as CSV: a person fills ``label`` with the template id, ``none``
    (not this template, no label) or leaves it empty (not reviewed yet)."""
    templates = {t.template_id: t.text for t in result.templates}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(REVIEW_COLUMNS)
    for i, template_id, score in result.review:
        writer.writerow([reply_ids[i], replies[i], template_id, templates[template_id], score, ""])
    return out.getvalue()


def import_review(text: str, known_templates: set[str]) -> tuple[dict[str, str], list[str]]:
    """Reviewed labels (reply id -> template id) and, per bad row, why it was refused.

    A refused row is reported and skipped, never guessed: a typo in a template id must
    not teach the ranker a wrong reply.
    """
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("reply_id", "label") if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"review CSV: missing column(s) {missing}")
    labels: dict[str, str] = {}
    errors: list[str] = []
    for line, row in enumerate(reader, start=2):
        label = (row.get("label") or "").strip()
        reply_id = (row.get("reply_id") or "").strip()
        if not label or label == "none":
            continue
        if not reply_id:
            errors.append(f"line {line}: reply_id: empty")
        elif label not in known_templates:
            errors.append(f"line {line}: label: {label!r} is not a template id")
        else:
            labels[reply_id] = label
    return labels, errors

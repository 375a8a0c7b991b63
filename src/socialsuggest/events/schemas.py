"""Typed, versioned schemas of everything the platform ingests.

Each event type knows four things the rest of the platform relies on: the lake
dataset it lands in, the timestamp that decides its ``dt=`` partition, the key that
makes re-ingest idempotent, and which of its fields identify a person (data
subjects, for the GDPR catalog and deletion requests). Keeping those facts next to
the fields means a new field marked ``personal`` is erasable without touching the
privacy code.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, ClassVar, Literal

import pyarrow as pa
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.config import JsonDict

#: Fields carrying an identifier of a natural person are marked with this flag.
PERSONAL: JsonDict = {"personal": True}

#: Org ids appear in lake paths and registered model names (``tags.<org>``).
ORG_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def _org_id(value: str) -> str:
    if not ORG_PATTERN.fullmatch(value):
        raise ValueError(
            "must be 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit"
        )
    return value


OrgId = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_org_id)]
Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
SubjectId = Identifier
TagName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$"
    ),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcTime = Annotated[AwareDatetime, AfterValidator(_utc)]


def _hashtag(value: str) -> str:
    """Hashtags compare case-insensitively and are stored without the ``#``."""
    cleaned = value.strip().lstrip("#").lower()
    if not cleaned or any(ch.isspace() for ch in cleaned):
        raise ValueError("a hashtag must be one non-empty word")
    return cleaned


Hashtag = Annotated[str, StringConstraints(max_length=140), AfterValidator(_hashtag)]


class Network(StrEnum):
    TWITTER = "twitter"
    FACEBOOK = "facebook"
    INSTAGRAM = "instagram"
    LINKEDIN = "linkedin"
    YOUTUBE = "youtube"
    TIKTOK = "tiktok"


class MessageType(StrEnum):
    MENTION = "mention"
    COMMENT = "comment"
    DIRECT_MESSAGE = "direct_message"
    REPLY = "reply"
    REVIEW = "review"
    POST = "post"


class Event(BaseModel):
    """Common behaviour; subclasses set the class variables and the fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    event_type: str
    schema_version: int

    dataset: ClassVar[str]
    time_field: ClassVar[str]
    key_fields: ClassVar[tuple[str, ...]]
    arrow_fields: ClassVar[list[pa.Field]]

    @property
    def org(self) -> str:
        return str(getattr(self, "org_id"))  # noqa: B009 - every event has one

    @property
    def event_time(self) -> datetime:
        value: datetime = getattr(self, self.time_field)
        return value

    @property
    def key(self) -> str:
        """Identity used for idempotent ingest: same key + same content = duplicate."""
        parts = [self.event_type, *(str(getattr(self, f)) for f in self.key_fields)]
        return "|".join(parts)

    def row(self) -> dict[str, Any]:
        return self.model_dump(mode="python")

    def content_hash(self) -> str:
        # Field order is fixed by the model class, so the JSON is canonical per version.
        return hashlib.blake2b(self.model_dump_json().encode(), digest_size=16).hexdigest()

    def subject_ids(self) -> set[str]:
        """Distinct person identifiers in this event (fields marked ``personal``)."""
        return _personal_values(self)

    @classmethod
    def arrow_schema(cls) -> pa.Schema:
        return pa.schema(
            [
                pa.field("event_type", pa.string(), nullable=False),
                pa.field("schema_version", pa.int16(), nullable=False),
                *cls.arrow_fields,
                *LINEAGE_FIELDS,
            ]
        )


#: Columns the ingest adds to every raw row: idempotency and provenance.
LINEAGE_FIELDS = [
    pa.field("_key", pa.string(), nullable=False),
    pa.field("_record_hash", pa.string(), nullable=False),
    pa.field("_source", pa.string(), nullable=False),
    pa.field("_ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
]

_TS = pa.timestamp("us", tz="UTC")


def personal_field_names() -> frozenset[str]:
    """Every field name marked personal in any event schema (nested ones included)."""
    names: set[str] = set()
    models: list[type[BaseModel]] = [*REGISTRY.values(), TagApplied]
    for model in models:
        for name, info in model.model_fields.items():
            extra = info.json_schema_extra
            if isinstance(extra, dict) and extra.get("personal"):
                names.add(name)
    return frozenset(names)


@cache
def _personal_layout(model: type[BaseModel]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(personal field names, fields that may hold nested models) of one class."""
    personal, nested = [], []
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get("personal"):
            personal.append(name)
        elif "list" in str(info.annotation) or "BaseModel" in str(info.annotation):
            nested.append(name)
    return tuple(personal), tuple(nested)


def _personal_values(model: BaseModel) -> set[str]:
    personal, nested = _personal_layout(type(model))
    found = {str(v) for v in (getattr(model, name) for name in personal) if v}
    for name in nested:
        value = getattr(model, name)
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if isinstance(item, BaseModel):
                found |= _personal_values(item)
    return found


class TagApplied(BaseModel):
    """A tag on a message, and who put it there (an agent: personal data too)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tag: TagName
    applied_by: SubjectId = Field(json_schema_extra=PERSONAL)
    applied_at: UtcTime | None = None


class MessageV1(Event):
    """An inbound social message and the tags the org's users applied to it."""

    event_type: Literal["message"] = "message"
    schema_version: Literal[1] = 1
    message_id: Identifier
    org_id: OrgId
    network: Network
    message_type: MessageType
    author_id: SubjectId = Field(json_schema_extra=PERSONAL)
    text: Text
    created_at: UtcTime
    tags: list[TagApplied] = Field(default_factory=list, max_length=100)

    dataset: ClassVar[str] = "messages"
    time_field: ClassVar[str] = "created_at"
    key_fields: ClassVar[tuple[str, ...]] = ("org_id", "message_id")
    arrow_fields: ClassVar[list[pa.Field]] = [
        pa.field("message_id", pa.string(), nullable=False),
        pa.field("org_id", pa.string(), nullable=False),
        pa.field("network", pa.string(), nullable=False),
        pa.field("message_type", pa.string(), nullable=False),
        pa.field("author_id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("created_at", _TS, nullable=False),
        pa.field(
            "tags",
            pa.list_(
                pa.struct(
                    [
                        pa.field("tag", pa.string()),
                        pa.field("applied_by", pa.string()),
                        pa.field("applied_at", _TS),
                    ]
                )
            ),
        ),
    ]


class TagLifecycleV1(Event):
    """A tag created or archived in an org: archived tags must stop being suggested."""

    event_type: Literal["tag_lifecycle"] = "tag_lifecycle"
    schema_version: Literal[1] = 1
    org_id: OrgId
    tag: TagName
    action: Literal["created", "archived"]
    at: UtcTime
    actor_id: SubjectId | None = Field(default=None, json_schema_extra=PERSONAL)

    dataset: ClassVar[str] = "tag_events"
    time_field: ClassVar[str] = "at"
    key_fields: ClassVar[tuple[str, ...]] = ("org_id", "tag", "action", "at")
    arrow_fields: ClassVar[list[pa.Field]] = [
        pa.field("org_id", pa.string(), nullable=False),
        pa.field("tag", pa.string(), nullable=False),
        pa.field("action", pa.string(), nullable=False),
        pa.field("at", _TS, nullable=False),
        pa.field("actor_id", pa.string()),
    ]


class SavedReplyChosenV1(Event):
    """An agent answered an inbound message with one of the org's saved replies."""

    event_type: Literal["saved_reply_chosen"] = "saved_reply_chosen"
    schema_version: Literal[1] = 1
    org_id: OrgId
    message_id: Identifier
    reply_id: Identifier
    at: UtcTime
    agent_id: SubjectId | None = Field(default=None, json_schema_extra=PERSONAL)

    dataset: ClassVar[str] = "reply_choices"
    time_field: ClassVar[str] = "at"
    key_fields: ClassVar[tuple[str, ...]] = ("org_id", "message_id", "reply_id")
    arrow_fields: ClassVar[list[pa.Field]] = [
        pa.field("org_id", pa.string(), nullable=False),
        pa.field("message_id", pa.string(), nullable=False),
        pa.field("reply_id", pa.string(), nullable=False),
        pa.field("at", _TS, nullable=False),
        pa.field("agent_id", pa.string()),
    ]


class ReplySentV1(Event):
    """A reply an agent sent to an inbound message: typed, or a saved reply (edited).

    The bootstrap of the replies family clusters these until "saved reply chosen"
    events exist. The reply may name the customer, so the inbound message's author is
    recorded as ``recipient_id``: a deletion request for them erases the replies too.
    """

    event_type: Literal["reply_sent"] = "reply_sent"
    schema_version: Literal[1] = 1
    org_id: OrgId
    reply_message_id: Identifier
    message_id: Identifier
    agent_id: SubjectId = Field(json_schema_extra=PERSONAL)
    recipient_id: SubjectId | None = Field(default=None, json_schema_extra=PERSONAL)
    text: Text
    sent_at: UtcTime

    dataset: ClassVar[str] = "replies_sent"
    time_field: ClassVar[str] = "sent_at"
    key_fields: ClassVar[tuple[str, ...]] = ("org_id", "reply_message_id")
    arrow_fields: ClassVar[list[pa.Field]] = [
        pa.field("org_id", pa.string(), nullable=False),
        pa.field("reply_message_id", pa.string(), nullable=False),
        pa.field("message_id", pa.string(), nullable=False),
        pa.field("agent_id", pa.string(), nullable=False),
        pa.field("recipient_id", pa.string()),
        pa.field("text", pa.string(), nullable=False),
        pa.field("sent_at", _TS, nullable=False),
    ]


class PostV1(Event):
    """An org's own post with its hashtags (hashtag suggestion and trends)."""

    event_type: Literal["post"] = "post"
    schema_version: Literal[1] = 1
    post_id: Identifier
    org_id: OrgId
    network: Network
    author_id: SubjectId = Field(json_schema_extra=PERSONAL)
    text: Text
    hashtags: list[Hashtag] = Field(default_factory=list, max_length=100)
    created_at: UtcTime

    dataset: ClassVar[str] = "posts"
    time_field: ClassVar[str] = "created_at"
    key_fields: ClassVar[tuple[str, ...]] = ("org_id", "post_id")
    arrow_fields: ClassVar[list[pa.Field]] = [
        pa.field("post_id", pa.string(), nullable=False),
        pa.field("org_id", pa.string(), nullable=False),
        pa.field("network", pa.string(), nullable=False),
        pa.field("author_id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("hashtags", pa.list_(pa.string())),
        pa.field("created_at", _TS, nullable=False),
    ]


#: (event_type, schema_version) -> model. A new version is added here; older ones stay
#: readable so that files produced by older producers still ingest.
REGISTRY: dict[tuple[str, int], type[Event]] = {
    ("message", 1): MessageV1,
    ("tag_lifecycle", 1): TagLifecycleV1,
    ("saved_reply_chosen", 1): SavedReplyChosenV1,
    ("post", 1): PostV1,
    ("reply_sent", 1): ReplySentV1,
}
LATEST: dict[str, type[Event]] = {}
for (_type, _version), _model in sorted(REGISTRY.items()):
    LATEST[_type] = _model
DATASETS: dict[str, type[Event]] = {model.dataset: model for model in LATEST.values()}

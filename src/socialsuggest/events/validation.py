"""Turn untyped records (JSON lines, CSV rows, Parquet rows) into typed events.

A rejected record must say *which field* is wrong and *why*, because the reason is
what an operator reads in quarantine. Unknown fields are rejected rather than
dropped: an unexpected column may carry personal data the GDPR catalog would then
never know about.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from socialsuggest.events.schemas import LATEST, REGISTRY, Event

_LIST_FIELDS = ("tags", "hashtags")


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class EventValidationError(ValueError):
    """A record that is not a valid event; ``errors`` names each field and reason."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


def _normalise(record: Mapping[str, Any]) -> dict[str, Any]:
    """Undo what flat formats do to values: empty CSV cells, JSON-encoded lists."""
    out: dict[str, Any] = {}
    for name, value in record.items():
        if value is None or (isinstance(value, str) and value == "" and name != "text"):
            continue
        if name in _LIST_FIELDS and isinstance(value, str):
            stripped = value.strip()
            if stripped.startswith("["):
                try:
                    value = json.loads(stripped)
                except json.JSONDecodeError as exc:
                    raise EventValidationError(
                        [FieldError(name, f"not a valid JSON list ({exc.msg})")]
                    ) from None
            elif name == "hashtags":
                value = stripped.replace(",", " ").split()
        out[name] = value
    return out


def _model_for(record: Mapping[str, Any], default_type: str | None) -> type[Event]:
    event_type = record.get("event_type") or default_type
    if not event_type:
        known = ", ".join(sorted(LATEST))
        raise EventValidationError([FieldError("event_type", f"is required (one of {known})")])
    if event_type not in LATEST:
        known = ", ".join(sorted(LATEST))
        raise EventValidationError(
            [FieldError("event_type", f"unknown type {event_type!r} (one of {known})")]
        )
    raw_version = record.get("schema_version", 1)
    try:
        version = int(raw_version)
    except (TypeError, ValueError):
        raise EventValidationError(
            [FieldError("schema_version", f"not an integer: {raw_version!r}")]
        ) from None
    model: type[Event] | None = REGISTRY.get((str(event_type), version))
    if model is None:
        supported = sorted(v for (t, v) in REGISTRY if t == event_type)
        raise EventValidationError(
            [
                FieldError(
                    "schema_version",
                    f"unsupported version {version} for {event_type} (supported: {supported})",
                )
            ]
        )
    return model


def parse_event(record: Mapping[str, Any], default_type: str | None = None) -> Event:
    """Validate one record; raise :class:`EventValidationError` with per-field reasons.

    ``schema_version`` may be omitted and then means 1, the first version, so that
    producers written before versioning existed keep their meaning when v2 arrives.
    """
    if not isinstance(record, Mapping):
        raise EventValidationError([FieldError("record", "is not an object")])
    model = _model_for(record, default_type)
    values = _normalise(record)
    values["event_type"] = model.model_fields["event_type"].default
    values["schema_version"] = model.model_fields["schema_version"].default
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        errors = [
            FieldError(".".join(str(p) for p in err["loc"]) or "record", _reason(err))
            for err in exc.errors()
        ]
        raise EventValidationError(errors) from None


def _reason(err: Any) -> str:
    kind = err.get("type", "")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a field of this event type (unknown fields are refused, not dropped)"
    if kind == "timezone_aware":
        return "must include a timezone offset (e.g. 2026-01-31T12:00:00Z)"
    message = str(err.get("msg", "is invalid"))
    return message.removeprefix("Value error, ")

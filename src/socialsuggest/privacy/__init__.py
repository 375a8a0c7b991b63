"""GDPR operations: deletion requests, retention purge, verification, export, audit.

``Privacy.from_settings(settings)`` is the entry point the CLI, the Airflow DAGs and
tests share; see :mod:`.engine` for the order of steps and the crash-safety
argument, :mod:`.journal` for the audit record.
"""

from __future__ import annotations

from socialsuggest.privacy.engine import ModelFlagger, Outcome, Privacy, PrivacyError
from socialsuggest.privacy.journal import Journal, ObjectStep
from socialsuggest.privacy.keys import privacy_key, subject_hash
from socialsuggest.privacy.retrain import RetrainQueue
from socialsuggest.privacy.setup import (
    erased_subjects,
    open_privacy,
    reachable_tracking_uri,
    registry_flagger,
)
from socialsuggest.privacy.tombstones import PrivacyKeyMismatchError, Tombstones

__all__ = [
    "Journal",
    "ModelFlagger",
    "ObjectStep",
    "Outcome",
    "Privacy",
    "PrivacyError",
    "PrivacyKeyMismatchError",
    "RetrainQueue",
    "Tombstones",
    "erased_subjects",
    "open_privacy",
    "privacy_key",
    "reachable_tracking_uri",
    "registry_flagger",
    "subject_hash",
]

"""Pseudonymising subject ids for audit records.

An audit record must prove *which* request erased *whom* without itself holding the
person's id. A plain hash is not enough: subject ids are short and guessable
(``u123``), so a dictionary attack would reverse them. An HMAC with a secret key
from the environment cannot be reversed without the key, and the same key lets an
operator answer "was this person erased?" by hashing the id again.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from socialsuggest.config import Profile, Settings

KEY_FILE = "privacy.key"


def privacy_key(settings: Settings) -> bytes:
    """``SOCIALSUGGEST_PRIVACY_KEY``; in the embedded profile, a 0600 key file under home."""
    secret = settings.privacy_key.get_secret_value()
    if secret:
        return secret.encode()
    if settings.profile == Profile.SERVICES:
        raise ValueError(
            "privacy_key: SOCIALSUGGEST_PRIVACY_KEY must be set in the services profile "
            "(it keys the hashes of subject ids in audit records)"
        )
    path = settings.home / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def subject_hash(subject_id: str, key: bytes) -> str:
    """Keyed, irreversible id of a subject, stable for a given key."""
    return hmac.new(key, subject_id.encode(), hashlib.sha256).hexdigest()[:32]

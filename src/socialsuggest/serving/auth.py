"""Tenant isolation: per-org API keys for the suggestion API.

An org's key reaches only that org's routes (every route whose path has ``{org}``);
an operator's admin key, taken from the environment only (``SOCIALSUGGEST_ADMIN_KEY``,
never stored), reaches all of them. ``/healthz``, ``/readyz``, ``/metrics`` and the
OpenAPI docs carry no org data and stay open.

Keys look like ``ssk_<key_id>_<secret>``: the key id is a public handle (shown by
``socialsuggest keys ls``, used to revoke, safe in logs), the secret is 32 random
bytes. The store keeps only ``sha256(secret)``: a fast hash is enough because the
secret is not a password but 256 bits of randomness, so a leaked store cannot be
brute-forced, while a slow KDF would cost milliseconds on every request.

The store is one JSON file under the settings home (``serving/keys.json``, mode 0600,
replaced atomically under an exclusive lock so concurrent CLI calls cannot lose a
key). A running server checks the file's identity (inode, mtime, size) on every
request -- one ``stat`` -- and re-reads it when it changed, so ``keys create`` and
``keys revoke`` take effect on the next request, without a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from pydantic import SecretStr

from socialsuggest.config import Settings
from socialsuggest.events.schemas import ORG_PATTERN

log = logging.getLogger(__name__)

PREFIX = "ssk"
ORG_PARAM = "org"
SCHEME_NAME = "apiKey"
MIN_ADMIN_KEY_CHARS = 32
_KEY_ID_BYTES = 8  # 16 hex characters: a handle, not a secret
_SECRET_BYTES = 32
_REALM = 'Bearer realm="socialsuggest"'


class KeyStoreError(ValueError):
    """A key operation that cannot be done (unknown key id, invalid org, bad file)."""


class AuthError(Exception):
    """A request that did not prove who it is (401) or may not reach the org (403)."""

    def __init__(self, status: int, reason: str, *, challenge: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.challenge = challenge


@dataclass(frozen=True)
class ApiKey:
    """One key as the store knows it: everything but the secret."""

    key_id: str
    org: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Access:
    """Who a request is: an org's key (``org`` set) or the operator's admin key."""

    org: str | None
    key_id: str | None = None

    @property
    def admin(self) -> bool:
        return self.org is None

    def may_reach(self, org: str) -> bool:
        return self.admin or self.org == org


@dataclass(frozen=True)
class _Record:
    key: ApiKey
    digest: str  # sha256 of the secret, hex


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def store_path(settings: Settings) -> Path:
    """Where a home keeps its keys: ``$SOCIALSUGGEST_HOME/serving/keys.json``."""
    return settings.home / "serving" / "keys.json"


def split_key(presented: str) -> tuple[str, str] | None:
    """``ssk_<key_id>_<secret>`` → ``(key_id, secret)``, or None when it is not that shape."""
    prefix, _, rest = presented.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or len(key_id) != 2 * _KEY_ID_BYTES or not secret:
        return None
    if any(c not in "0123456789abcdef" for c in key_id):
        return None
    return key_id, secret


class KeyStore:
    """API keys of all orgs, persisted as hashes in one file; safe across threads."""

    def __init__(self, path: Path, *, admin_key: SecretStr | str = "") -> None:
        self.path = Path(path)
        admin = admin_key.get_secret_value() if isinstance(admin_key, SecretStr) else admin_key
        if 0 < len(admin) < MIN_ADMIN_KEY_CHARS:
            # it reaches every org: a guessable one would undo the isolation. Checked here,
            # not in Settings, whose validation errors would echo the value.
            raise KeyStoreError(
                f"admin_key: SOCIALSUGGEST_ADMIN_KEY must be at least {MIN_ADMIN_KEY_CHARS} "
                "characters (or unset for no admin key)"
            )
        self._admin = admin.encode() if admin else None
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}
        self._seen: tuple[int, int, int] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyStore:
        """The store of this home, with the admin key of the environment (for serving)."""
        return cls(store_path(settings), admin_key=settings.admin_key)

    # ---- operations (the CLI) --------------------------------------------------------

    def create(self, org: str) -> tuple[ApiKey, str]:
        """A new key for ``org``: its record and the full key, which is never stored."""
        if not ORG_PATTERN.fullmatch(org):
            raise KeyStoreError(
                f"org: {org!r} is not a valid org id (1-63 lowercase letters, digits, "
                "'-' or '_', starting with a letter or digit)"
            )
        with self._editing() as records:
            key_id = secrets.token_hex(_KEY_ID_BYTES)
            while key_id in records:  # 64 random bits: practically never
                key_id = secrets.token_hex(_KEY_ID_BYTES)
            secret = secrets.token_urlsafe(_SECRET_BYTES)
            key = ApiKey(key_id=key_id, org=org, created_at=_now())
            records[key_id] = _Record(key, _digest(secret))
        return key, f"{PREFIX}_{key_id}_{secret}"

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key (idempotent: revoking twice keeps the first revocation time)."""
        with self._editing() as records:
            record = records.get(key_id)
            if record is None:
                raise KeyStoreError(f"key_id: no key {key_id!r} in {self.path}")
            if record.key.active:
                record = replace(record, key=replace(record.key, revoked_at=_now()))
                records[key_id] = record
        return record.key

    def list_keys(self, org: str | None = None) -> list[ApiKey]:
        """Every key (or one org's), oldest first; secrets are not known to the store."""
        return [r.key for r in self._current().values() if org is None or r.key.org == org]

    def has_active_key(self, org: str) -> bool:
        return any(k.active for k in self.list_keys(org))

    # ---- the request path ----------------------------------------------------------

    def authenticate(self, presented: str | None) -> Access:
        """Who presents this key; :class:`AuthError` (401) when nobody we know."""
        if not presented:
            raise AuthError(
                401,
                "missing API key: send 'Authorization: Bearer <key>' (or 'X-API-Key: <key>')",
                challenge=_REALM,
            )
        invalid = f'{_REALM}, error="invalid_token"'
        if self._admin is not None and hmac.compare_digest(presented.encode(), self._admin):
            return Access(org=None)
        parts = split_key(presented)
        if parts is None:
            raise AuthError(401, "invalid API key: not of the form ssk_<id>_<secret>",
                            challenge=invalid)  # fmt: skip
        key_id, secret = parts
        record = self._current().get(key_id)
        if record is None or not hmac.compare_digest(_digest(secret), record.digest):
            raise AuthError(401, "invalid API key: unknown key", challenge=invalid)
        if not record.key.active:
            raise AuthError(401, "invalid API key: the key was revoked", challenge=invalid)
        return Access(org=record.key.org, key_id=key_id)

    # ---- the file ------------------------------------------------------------------

    def _current(self) -> dict[str, _Record]:
        """The records, re-read only when the file changed since the last look."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            seen = None
        else:
            seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if seen != self._seen:
                try:
                    self._records = self._read()
                except KeyStoreError as exc:  # keep serving with what we had
                    log.warning("API key store not reloaded: %s", exc)
                else:
                    if self._seen is not None or self._records:
                        active = sum(r.key.active for r in self._records.values())
                        log.info("API key store loaded: %d keys, %d active",
                                 len(self._records), active)  # fmt: skip
                self._seen = seen
            return self._records

    def _read(self) -> dict[str, _Record]:
        try:
            raw = json.loads(self.path.read_text())
            return {
                item["key_id"]: _Record(
                    ApiKey(item["key_id"], item["org"], item["created_at"], item.get("revoked_at")),
                    item["sha256"],
                )
                for item in raw["keys"]
            }
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(f"{self.path} is not a key store: {type(exc).__name__}") from exc

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, _Record]]:
        """Read-modify-write under an exclusive lock; the file is replaced atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            records = self._read()
            yield records
            self._write(records)
        finally:
            os.close(fd)  # releases the lock

    def _write(self, records: dict[str, _Record]) -> None:
        body: dict[str, Any] = {
            "version": 1,
            "keys": [{**asdict(r.key), "sha256": r.digest} for r in records.values()],  # by age
        }
        fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=self.path.parent)  # created 0600
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(body, handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def presented_key(request: Request) -> str | None:
    """The key a request carries: ``Authorization: Bearer`` first, else ``X-API-Key``."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise AuthError(
                401,
                "authorization: only the Bearer scheme is accepted ('Authorization: Bearer <key>')",
                challenge=f'{_REALM}, error="invalid_request"',
            )
        return credentials.strip()
    return request.headers.get("x-api-key") or None


#: Routes with no ``{org}`` that still need a key (any org's or the admin's): global
#: lists computed from every org's data (trending hashtags) are not for anonymous callers.
KEYED_GLOBAL_PATHS = ("/v1/trends",)


def org_access(keys: KeyStore) -> Callable[[Request], Awaitable[Access | None]]:
    """The dependency that guards every route with an ``{org}`` path parameter.

    Installed app-wide (``FastAPI(dependencies=...)``) rather than per route, so a
    route added later under ``/v1/orgs/{org}/…`` is guarded without anyone having to
    remember it; routes without ``{org}`` pass through untouched. It runs before the
    request body is validated, so a caller without a valid key learns nothing about
    the body schema -- except a body that is not JSON at all, which FastAPI rejects
    (422) while reading it, before any dependency runs.
    """

    async def check(request: Request) -> Access | None:
        org = request.path_params.get(ORG_PARAM)
        keyed_global = request.url.path in KEYED_GLOBAL_PATHS
        if org is None and not keyed_global:
            return None
        try:
            access = keys.authenticate(presented_key(request))
        except AuthError as exc:
            headers = {"WWW-Authenticate": exc.challenge} if exc.challenge else None
            raise HTTPException(exc.status, detail=exc.reason, headers=headers) from None
        if org is None:  # a global list: any valid key reads it
            request.state.access = access
            return access
        if not access.may_reach(org):
            raise HTTPException(
                403,
                detail="forbidden: this API key belongs to another org; "
                "an org's key reaches only that org's routes",
            )
        request.state.access = access
        return access

    return check


def document_security(app: FastAPI) -> None:
    """Declare the key in the OpenAPI schema, on exactly the routes that require it.

    The guard reads headers itself (an app-wide ``HTTPBearer`` would mark every route,
    /healthz included, as secured), so the schema is completed here instead.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("securitySchemes", {})[SCHEME_NAME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "an org's API key (socialsuggest keys create --org ORG) or the "
            "admin key; also accepted as an X-API-Key header",
        }
        for path, operations in schema.get("paths", {}).items():
            if "{" + ORG_PARAM + "}" not in path and path not in KEYED_GLOBAL_PATHS:
                continue
            for operation in operations.values():
                operation["security"] = [{SCHEME_NAME: []}]
                responses = operation.setdefault("responses", {})
                responses.setdefault("401", {"description": "no valid API key"})
                responses.setdefault("403", {"description": "the key is for another org"})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

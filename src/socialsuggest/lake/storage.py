"""Byte storage under one root: a local directory or an S3 bucket prefix.

Only whole-object operations are offered, and every write is atomic: a reader sees
the previous object or the new one, never a partial file. Locally that is a hidden
temporary file, fsync, then ``os.replace`` in the same directory; on S3 a single
PUT is already atomic, and ``create_only`` maps to a conditional put
(``If-None-Match: *``). Listing never shows temporaries (names starting with ``.``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class ObjectExistsError(FileExistsError):
    """A create-only write found the key already present."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


class Storage(Protocol):
    root: str

    def put(self, key: str, data: bytes, *, create_only: bool = False) -> None: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def iter_objects(self, prefix: str = "") -> Iterator[ObjectInfo]: ...
    def iter_folders(self, prefix: str) -> Iterator[str]: ...
    def uri(self, key: str) -> str: ...


def _visible(key: str) -> bool:
    return not any(part.startswith(".") for part in key.split("/"))


class LocalStorage:
    """A directory tree; atomic through temp file + fsync + rename."""

    def __init__(self, root: str | Path) -> None:
        self._root = Path(root)
        self.root = str(self._root)

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"key: {key!r} must be relative and stay under the root")
        return self._root / key

    def put(self, key: str, data: bytes, *, create_only: bool = False) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".tmp-{uuid.uuid4().hex}-{target.name}"
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if create_only:
                # link() fails if the target exists, which makes create-only atomic too.
                try:
                    os.link(tmp, target)
                except FileExistsError:
                    raise ObjectExistsError(key) from None
            else:
                os.replace(tmp, target)
            _fsync_dir(target.parent)
        finally:
            tmp.unlink(missing_ok=True)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def iter_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        base = self._path(prefix) if prefix else self._root
        if base.is_file():
            yield ObjectInfo(prefix, base.stat().st_size)
            return
        if not base.is_dir():
            return
        yield from _walk(str(base), len(str(self._root)) + 1)

    def iter_folders(self, prefix: str) -> Iterator[str]:
        """The folder names directly under ``prefix`` (one level, sorted)."""
        base = self._path(prefix) if prefix else self._root
        if not base.is_dir():
            return
        for entry in sorted(os.scandir(base), key=lambda e: e.name):
            if entry.is_dir() and not entry.name.startswith("."):
                yield entry.name

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def stale_temporaries(self) -> list[Path]:
        """Leftovers of writers that crashed mid-write (invisible, safe to delete)."""
        return sorted(self._root.rglob(".tmp-*")) if self._root.exists() else []


def _walk(folder: str, cut: int) -> Iterator[ObjectInfo]:
    """Visible files under ``folder``, keys relative to the root (``cut`` characters of
    path dropped): a folder's files by name, then its subfolders by name, depth first.

    ``os.scandir`` and plain strings instead of ``os.walk`` and ``pathlib``: the daily
    jobs list the whole raw zone, 90k files at 1,000 orgs and a month, and building two
    Path objects per file was most of the listing time (2026-12-03).
    """
    with os.scandir(folder) as scan:
        entries = sorted((e for e in scan if not e.name.startswith(".")), key=lambda e: e.name)
    folders = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):  # as os.walk: links to folders not followed
            folders.append(entry.path)
        elif entry.is_file(follow_symlinks=True):
            yield ObjectInfo(entry.path[cut:].replace(os.sep, "/"), entry.stat().st_size)
    for path in folders:
        yield from _walk(path, cut)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3Storage:
    """An S3 (or S3-compatible) bucket prefix through boto3."""

    def __init__(self, uri: str, endpoint_url: str | None = None) -> None:
        import boto3  # imported lazily: most runs are local
        from botocore.config import Config

        without_scheme = uri.split("://", 1)[1]
        self.bucket, _, prefix = without_scheme.partition("/")
        if not self.bucket:
            raise ValueError(f"lake_root: {uri!r} has no bucket name")
        self.prefix = prefix.strip("/")
        self.root = uri.rstrip("/")
        # Credentials come from boto3's usual sources (AWS_ACCESS_KEY_ID, ... or a
        # profile), never from our settings. A custom endpoint (SeaweedFS, MinIO) gets
        # path-style addressing: bucket.127.0.0.1 does not resolve.
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            config=Config(s3={"addressing_style": "path"}) if endpoint_url else None,
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, *, create_only: bool = False) -> None:
        extra = {"IfNoneMatch": "*"} if create_only else {}
        try:
            self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **extra)
        except self._client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                raise ObjectExistsError(key) from None
            raise

    def get(self, key: str) -> bytes:
        response = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
        body: bytes = response["Body"].read()
        return body

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except self._client.exceptions.ClientError:
            return False
        return True

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def iter_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        full_prefix = self._key(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
            for item in page.get("Contents", []):
                key = item["Key"][strip:]
                if _visible(key):
                    yield ObjectInfo(key, int(item["Size"]))

    def iter_folders(self, prefix: str) -> Iterator[str]:
        """The "folder" names directly under ``prefix``: S3's common prefixes at ``/``."""
        paginator = self._client.get_paginator("list_objects_v2")
        full_prefix = self._key(prefix.rstrip("/") + "/") if prefix else self._key("")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=full_prefix, Delimiter="/")
        for page in pages:
            for common in page.get("CommonPrefixes", []):
                name = common["Prefix"][len(full_prefix) :].rstrip("/")
                if name and _visible(name):
                    yield name

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"


def open_storage(root: str, endpoint_url: str | None = None) -> Storage:
    """Pick the backend from the root's scheme."""
    if root.startswith("s3://"):
        return S3Storage(root, endpoint_url)
    if "://" in root:
        raise ValueError(f"lake_root: unsupported scheme in {root!r} (use a path or s3://)")
    return LocalStorage(root)

"""Parquet partitions on a local path or S3, with atomic writes and replace."""

from socialsuggest.lake.lake import (
    OUTBOX_PREFIX,
    PERSONAL_ZONES,
    UNKNOWN_ORG,
    ZONES,
    DatasetStats,
    Lake,
    LakeObject,
    PartitionFile,
)
from socialsuggest.lake.storage import (
    LocalStorage,
    ObjectExistsError,
    S3Storage,
    Storage,
    open_storage,
)

__all__ = [
    "OUTBOX_PREFIX",
    "PERSONAL_ZONES",
    "UNKNOWN_ORG",
    "ZONES",
    "DatasetStats",
    "Lake",
    "LakeObject",
    "LocalStorage",
    "ObjectExistsError",
    "PartitionFile",
    "S3Storage",
    "Storage",
    "open_storage",
]

"""Events from files or Python calls into the raw lake; bad records into quarantine."""

from socialsuggest.ingest.ingest import (
    QUARANTINE_SCHEMA,
    Ingestor,
    IngestReport,
    ingest_events,
    ingest_paths,
)
from socialsuggest.ingest.readers import SUFFIXES, read_records, source_files

__all__ = [
    "QUARANTINE_SCHEMA",
    "SUFFIXES",
    "IngestReport",
    "Ingestor",
    "ingest_events",
    "ingest_paths",
    "read_records",
    "source_files",
]

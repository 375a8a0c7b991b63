"""MLflow: tracking server, runs, registered versions, aliases, promotion, rollback."""

from socialsuggest.registry.registry import (
    ACCEPTANCE_EXPERIMENT,
    CHALLENGER,
    PRODUCTION,
    QUALITY_EXPERIMENT,
    STAGING,
    Candidate,
    QualityRun,
    Registry,
    RegistryError,
    VersionInfo,
    code_version,
    default_actor,
    log_quality_or_warn,
    model_name,
)
from socialsuggest.registry.server import MlflowServer, free_port, start_server

__all__ = [
    "ACCEPTANCE_EXPERIMENT",
    "CHALLENGER",
    "PRODUCTION",
    "QUALITY_EXPERIMENT",
    "STAGING",
    "Candidate",
    "MlflowServer",
    "QualityRun",
    "Registry",
    "RegistryError",
    "VersionInfo",
    "code_version",
    "default_actor",
    "free_port",
    "log_quality_or_warn",
    "model_name",
    "start_server",
]

"""MLflow: tracking server, runs, registered versions, aliases, promotion, rollback."""

from socialsuggest.registry.registry import (
    CHALLENGER,
    PRODUCTION,
    STAGING,
    Candidate,
    Registry,
    RegistryError,
    VersionInfo,
    code_version,
    default_actor,
    model_name,
)
from socialsuggest.registry.server import MlflowServer, free_port, start_server

__all__ = [
    "CHALLENGER",
    "PRODUCTION",
    "STAGING",
    "Candidate",
    "MlflowServer",
    "Registry",
    "RegistryError",
    "VersionInfo",
    "code_version",
    "default_actor",
    "free_port",
    "model_name",
    "start_server",
]
